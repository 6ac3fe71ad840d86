package import Foundation
import GRIP
import Logging
import Synchronization

/// One held client request on the publish side: its channels and positions, and what each delivered item means
/// for it (grip-spec §3.4-3.5, §5.2). It talks to the connection only through ``HeldConnection``.
///
/// A session starts *starting*: live items are kept aside while the connection sends what comes first. In
/// ``activate()`` it delivers what the client missed (read from the log), then the items kept aside that the log
/// read did not already include, then goes live. It ends once: released, closed, recovering, or by the connection
/// (``end()``).
package final class HoldSession: ChannelSubscriber, RecordedSession {
    /// A unique id (also the held-request record's id).
    package let id: String
    package let request: HoldRequest
    /// When the hold started, for the held-request record (a hold taken over keeps the time its client's began).
    package let startedAt: Date
    let connection: any HeldConnection
    let hub: PublishHub
    /// Everything that changes, under one lock (the extensions in other files take it too).
    let state: Mutex<State>

    struct ChannelState {
        /// The id the next item's `prev-id` must equal, when the client's position is tracked (grip-spec §5.2).
        var expectedPrevID: String?
        /// Items up to this sequence were logged before the session joined, or read from the log at the start:
        /// live copies of them are dropped.
        var replayedThrough: Int64 = 0

        mutating func replay(through sequence: Int64) {
            self.replayedThrough = max(self.replayedThrough, sequence)
        }
        /// The id the client is at, for `build-id` (`%(channel)s`): the backend's `prev-id`, then the id of each
        /// item delivered in sequence.
        var currentID: String?
        /// The log sequence the client is at, once known: where it joined the log (without a `prev-id`, or in
        /// sync with it), then each item delivered in sequence. For the held-request record.
        var currentSequence: Int64?
    }

    enum Phase {
        case starting
        case live
        case ended
    }

    struct State {
        var phase = Phase.starting
        var channels: [String: ChannelState] = [:]
        /// Items read from the log, to deliver first.
        var replay: [Delivery] = []
        /// Live items that arrived while starting.
        var buffered: [Delivery] = []
        /// Channels whose position could not be resumed (reset signal owed on activation).
        var resetChannels: [String] = []
        /// Actions decided and not yet carried out, in the order decided (see ``drain()``).
        var outbox: [Action] = []
        var isDraining = false
        /// Called once the drainer has carried out every action decided (a hand-over waits for it).
        var onDrained: (@Sendable () -> Void)?
        /// Whether the positions moved since the held-request record was last written.
        var recordIsStale = false
    }

    /// What to do with the connection, decided under the lock and done outside it.
    enum Action {
        case respond(Instruct.Response)
        case content([UInt8])
        case endStream
        case recover([GripLast])
        /// A content filter failed (grip-spec §3.7).
        case fail(String)
    }

    init(id: String, request: HoldRequest, connection: any HeldConnection, hub: PublishHub) {
        self.id = id
        self.request = request
        self.startedAt = request.record?.startedAt ?? Date()
        self.connection = connection
        self.hub = hub
        var state = State()
        for channel in request.channels {
            if let resume = channel.resume {
                state.channels[channel.name] = ChannelState(
                    expectedPrevID: resume.expectedPrevID,
                    currentID: resume.currentID,
                    currentSequence: resume.sequence
                )
            } else {
                state.channels[channel.name] = ChannelState(expectedPrevID: channel.prevID, currentID: channel.prevID)
            }
        }
        self.state = Mutex(state)
    }

    // MARK: - Start

    /// Marks where the session joined each channel's log, right after it subscribed: items logged before (whose
    /// delivery may still be on its way) are not delivered to it live.
    func joined(at lastSequences: [String: Int64]) {
        self.state.withLock { state in
            for (channel, sequence) in lastSequences {
                state.channels[channel]?.replay(through: sequence)
                if state.channels[channel]?.currentID == nil && state.channels[channel]?.currentSequence == nil {
                    state.channels[channel]?.currentSequence = sequence
                }
            }
        }
    }

    /// Records what the log holds after a channel's position: delivered first on activation.
    func setReplay(channel: String, items: [Delivery], through lastSequence: Int64) {
        self.state.withLock { state in
            state.channels[channel]?.replay(through: lastSequence)
            if items.isEmpty {
                state.channels[channel]?.currentSequence = lastSequence
            }
            state.replay.append(contentsOf: items)
        }
    }

    /// The client's `prev-id` on `channel` is the newest item the log had when the session joined.
    func markInSync(channel: String) {
        self.state.withLock { state in
            guard let joined = state.channels[channel]?.replayedThrough else { return }
            state.channels[channel]?.currentSequence = joined
        }
    }

    /// The client's position on a channel cannot be resumed: stop checking prev-ids there, owe a reset signal.
    func markReset(channel: String) {
        self.state.withLock { state in
            state.channels[channel]?.expectedPrevID = nil
            state.resetChannels.append(channel)
        }
    }

    /// `Grip-Last` for every channel whose position is known.
    private static func gripLast(_ state: State, request: HoldRequest) -> [GripLast] {
        request.channels.compactMap { channel in
            state.channels[channel.name]?.expectedPrevID.map { GripLast(channel: channel.backendName, lastID: $0) }
        }
    }

    /// Goes live: sends the reset signal owed (as an SSE event on an event stream), what the log held after the
    /// client's positions, then the live items that arrived meanwhile. Call it once the connection has sent
    /// what comes first.
    package func activate() {
        let (actions, recordStale) = self.state.withLock { state -> ([Action], Bool) in
            guard case .starting = state.phase else { return ([], false) }
            state.phase = .live
            var actions: [Action] = []
            if self.request.mode == .stream && self.request.isEventStream {
                for channel in state.resetChannels {
                    actions.append(.content(Self.resetEvent(channel: channel)))
                }
            }
            let replay = state.replay
            let buffered = state.buffered
            state.replay = []
            state.buffered = []
            for delivery in replay {
                if let action = self.decide(delivery, fromLog: true, &state) {
                    actions.append(action)
                }
            }
            for delivery in buffered
            where delivery.sequence > (state.channels[delivery.channel]?.replayedThrough ?? 0) {
                if let action = self.decide(delivery, fromLog: false, &state) {
                    actions.append(action)
                }
            }
            state.outbox.append(contentsOf: actions)
            // The record was written when the hold started, with where it joined each channel: it moved only if
            // positions were resolved against the log (a prev-id) or items were delivered since.
            let moved =
                !replay.isEmpty || !buffered.isEmpty || self.request.channels.contains { $0.logPosition != nil }
            return (actions, moved && Self.markRecordStale(&state))
        }
        if recordStale {
            self.hub.holdRecords.positionsMoved(self)
        }
        if !actions.isEmpty {
            self.drain()
        }
    }

    /// The SSE event that tells a client its position on `channel` was lost (documented in the README).
    static func resetEvent(channel: String) -> [UInt8] {
        Array("event: reset\ndata: \(channel)\n\n".utf8)
    }

    // MARK: - Delivery

    /// An item committed on one of the session's channels (called in each channel's delivery order).
    func deliver(_ delivery: Delivery) {
        let (decided, recordStale) = self.state.withLock { state -> (Bool, Bool) in
            switch state.phase {
            case .ended:
                return (false, false)
            case .starting:
                state.buffered.append(delivery)
                return (false, false)
            case .live:
                guard delivery.sequence > (state.channels[delivery.channel]?.replayedThrough ?? 0) else {
                    return (false, false)
                }
                let action = self.decide(delivery, fromLog: false, &state)
                let recordStale = state.phase == .live && Self.markRecordStale(&state)
                guard let action else { return (false, recordStale) }
                state.outbox.append(action)
                return (true, recordStale)
            }
        }
        if recordStale {
            self.hub.holdRecords.positionsMoved(self)
        }
        if decided {
            self.drain()
        }
    }

    /// What one item does to the session. Every item is checked against the client's position (grip-spec §5.2),
    /// so that an item that entered the log past a missing predecessor (its `message_wait` ran out) means the same
    /// to a resuming client as to a live one. Items read from the log that carry no `prev-id` follow the log's
    /// order: a publisher that does not chain its items can still be resumed from. As in Pushpin, an item in
    /// sequence moves the position even when a delivery filter then drops it, so that the next one still follows.
    private func decide(_ delivery: Delivery, fromLog: Bool, _ state: inout State) -> Action? {
        guard case .live = state.phase, var channel = state.channels[delivery.channel] else { return nil }
        let inSequence =
            channel.expectedPrevID == nil || delivery.prevID == channel.expectedPrevID
            || (fromLog && delivery.prevID == nil)
        switch self.request.mode {
        case .response:
            guard let format = delivery.formats.httpResponse else { return nil }
            if !inSequence && !self.request.isRecovery {
                return self.endForRecovery(&state)
            }
            Self.advance(&channel, to: delivery, tracking: false)
            state.channels[delivery.channel] = channel
            if let failure = self.checkContentFilters(format.contentFilters, delivery, &state) {
                return failure
            }
            guard Self.passesFilters(delivery, channel: delivery.channel, request: self.request) else { return nil }
            switch format.action {
            case .close, .refresh:
                return nil
            case .hint:
                return self.endForRecovery(&state)
            case .send:
                state.phase = .ended
                do {
                    let response = try self.response(for: format, delivery: delivery, state)
                    self.hub.counters.deliveries.add(1, ordering: .relaxed)
                    self.hub.counters.metrics?.delivered(mode: "response", committedAt: delivery.committedAt)
                    return .respond(response)
                } catch {
                    return .fail("filter error: \(error.message)")
                }
            }
        case .stream:
            guard let format = delivery.formats.httpStream else { return nil }
            if !inSequence && self.request.hasNextLink {
                return self.endForRecovery(&state)
            }
            Self.advance(&channel, to: delivery, tracking: fromLog)
            state.channels[delivery.channel] = channel
            if let failure = self.checkContentFilters(format.contentFilters, delivery, &state) {
                return failure
            }
            guard Self.passesFilters(delivery, channel: delivery.channel, request: self.request) else { return nil }
            switch format.action {
            case .close:
                state.phase = .ended
                return .endStream
            case .hint:
                return self.request.hasNextLink ? self.endForRecovery(&state) : nil
            case .refresh:
                return nil
            case .send:
                do {
                    let content = try self.filtered(format.content, delivery: delivery, state)
                    self.hub.counters.deliveries.add(1, ordering: .relaxed)
                    self.hub.counters.metrics?.delivered(mode: "stream", committedAt: delivery.committedAt)
                    return .content(content)
                } catch {
                    state.phase = .ended
                    return .fail("filter error: \(error.message)")
                }
            }
        case .none:
            return nil
        }
    }

    /// An item in sequence moves the channel's position to it; `tracking` starts checking prev-ids from there
    /// (items read from the log).
    private static func advance(_ channel: inout ChannelState, to delivery: Delivery, tracking: Bool) {
        if channel.expectedPrevID != nil || tracking {
            channel.expectedPrevID = delivery.id
        }
        if let id = delivery.id {
            channel.currentID = id
        }
        channel.currentSequence = delivery.sequence
    }

    private func endForRecovery(_ state: inout State) -> Action {
        state.phase = .ended
        self.hub.counters.recoveries.add(1, ordering: .relaxed)
        return .recover(Self.gripLast(state, request: self.request))
    }
    /// Carries out the outbox's actions in the order they were decided. Decisions are made under the state lock and
    /// actions carried out outside it (a connection may call back into the session), so two threads that decide
    /// (activation and a live delivery, say) could otherwise write to the client out of order: one drains, the
    /// other only queues.
    private func drain() {
        let isDrainer = self.state.withLock { state -> Bool in
            guard !state.isDraining else { return false }
            state.isDraining = true
            return true
        }
        guard isDrainer else { return }
        while true {
            let (actions, onDrained) = self.state.withLock { state -> ([Action], (@Sendable () -> Void)?) in
                let actions = state.outbox
                state.outbox = []
                guard actions.isEmpty else { return (actions, nil) }
                state.isDraining = false
                defer { state.onDrained = nil }
                return ([], state.onDrained)
            }
            if actions.isEmpty {
                onDrained?()
                return
            }
            self.perform(actions)
        }
    }

    private func perform(_ actions: [Action]) {
        for action in actions {
            switch action {
            case .respond(let response):
                self.hub.sessionEnded(self)
                self.connection.sendResponse(response)
            case .content(let content):
                self.connection.sendStreamContent(content)
            case .endStream:
                self.hub.sessionEnded(self)
                self.connection.endStream()
            case .recover(let gripLast):
                self.hub.sessionEnded(self)
                self.connection.recover(gripLast: gripLast)
            case .fail(let message):
                self.hub.logger.info("hold ended by a content filter", metadata: ["error": "\(message)"])
                self.hub.sessionEnded(self)
                self.connection.filterFailed(message)
            }
        }
    }

    /// `recover` (grip-spec §5.5): ends the session and asks the connection to go back to the backend.
    package func recover() {
        let recovers = self.state.withLock { state -> Bool in
            if case .ended = state.phase { return false }
            state.phase = .ended
            state.outbox.append(.recover(Self.gripLast(state, request: self.request)))
            return true
        }
        if recovers {
            self.hub.counters.recoveries.add(1, ordering: .relaxed)
            self.drain()
        }
    }

    // MARK: - End

    /// The connection ended the hold (timeout, client gone, shutdown): unsubscribe. Safe to call more than once.
    package func end() {
        let wasEnded = self.state.withLock { state -> Bool in
            if case .ended = state.phase { return true }
            state.phase = .ended
            return false
        }
        if !wasEnded {
            self.hub.sessionEnded(self)
        }
    }
}
