import Store
import Synchronization

// Where the client is, for the held-request record (``HoldRecords`` rewrites it when it turns stale) and for a
// process that takes the client over.
extension HoldSession {
    /// Where the client is on each of its channels: the id of the last item it was sent (the backend's `prev-id`
    /// before any), nil where no id is known. With the hold's request, what a process needs to resume the client.
    package var positions: [String: String?] {
        self.state.withLock { state in state.channels.mapValues(\.currentID) }
    }

    /// The channels with the positions the client is at, in the request's order, for the held-request record;
    /// nil once the session ended (its record is deleted). The record is up to date after this call.
    func recordedChannels() -> [HoldRecord.Channel]? {
        self.state.withLock { state in
            if case .ended = state.phase { return nil }
            state.recordIsStale = false
            return self.request.channels.map { channel in
                let position = state.channels[channel.name]
                return HoldRecord.Channel(
                    name: channel.name,
                    lastId: position?.currentID,
                    lastSequence: position?.currentSequence
                )
            }
        }
    }

    /// Ends the session for a server that takes its client over: no item is decided for it from now on, and
    /// `completion` gets where the client is on each channel once every action decided before has been handed to
    /// the connection (whose event loop then has them queued ahead of anything submitted after). Nil when the
    /// session had already ended (a long-poll answered, say).
    package func handOver(_ completion: @escaping @Sendable ([String: HoldPosition]?) -> Void) {
        let (positions, waitsForDrain) = self.state.withLock { state -> ([String: HoldPosition]?, Bool) in
            if case .ended = state.phase { return (nil, false) }
            state.phase = .ended
            var positions: [String: HoldPosition] = [:]
            for (name, channel) in state.channels {
                positions[name] = HoldPosition(
                    expectedPrevID: channel.expectedPrevID,
                    currentID: channel.currentID,
                    sequence: channel.currentSequence
                )
            }
            // A decider appends to the outbox and then drains: an action not yet carried out is still coming.
            guard state.isDraining || !state.outbox.isEmpty else { return (positions, false) }
            let handedOver = positions
            state.onDrained = { completion(handedOver) }
            return (positions, true)
        }
        guard let positions else {
            completion(nil)
            return
        }
        self.hub.sessionEnded(self)
        if !waitsForDrain {
            completion(positions)
        }
    }

    func currentPositions() -> HoldPositions? {
        self.recordedChannels().map { HoldPositions(holdID: self.id, channels: $0) }
    }

    /// Marks the record stale; true when it was not already (the hub is then told, once, outside the lock).
    static func markRecordStale(_ state: inout State) -> Bool {
        defer { state.recordIsStale = true }
        return !state.recordIsStale
    }
}
