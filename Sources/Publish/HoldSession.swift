import Foundation
import GRIP
import Synchronization

/// One held client request on the publish side: its channels and positions, and what each delivered item means
/// for it (grip-spec §3.4-3.5, §5.2). It talks to the connection only through ``HeldConnection``.
///
/// A session starts *starting*: live items are kept aside while the connection sends what comes first. In
/// ``activate()`` it delivers what the client missed (read from the log), then the items kept aside that the log
/// read did not already include, then goes live. It ends once: released, closed, recovering, or by the connection
/// (``end()``).
package final class HoldSession: ChannelSubscriber {
    /// A unique id (also the held-request record's id).
    package let id: String
    package let request: HoldRequest
    let connection: any HeldConnection
    private let hub: PublishHub
    private let state: Mutex<State>

    private struct ChannelState {
        /// The id the next item's `prev-id` must equal, when the client's position is tracked (grip-spec §5.2).
        var expectedPrevID: String?
        /// Items up to this sequence were read from the log at the start: live copies of them are dropped.
        var replayedThrough: Int64 = 0
    }

    private enum Phase {
        case starting
        case live
        case ended
    }

    private struct State {
        var phase = Phase.starting
        var channels: [String: ChannelState] = [:]
        /// Items read from the log, to deliver first.
        var replay: [Delivery] = []
        /// Live items that arrived while starting.
        var buffered: [Delivery] = []
        /// Channels whose position could not be resumed (reset signal owed on activation).
        var resetChannels: [String] = []
    }

    /// What to do with the connection, decided under the lock and done outside it.
    private enum Action {
        case respond(Instruct.Response)
        case content([UInt8])
        case endStream
        case recover([GripLast])
    }

    init(id: String, request: HoldRequest, connection: any HeldConnection, hub: PublishHub) {
        self.id = id
        self.request = request
        self.connection = connection
        self.hub = hub
        var state = State()
        for channel in request.channels {
            state.channels[channel.name] = ChannelState(expectedPrevID: channel.prevID)
        }
        self.state = Mutex(state)
    }

    // MARK: - Start

    /// Records what the log holds after a channel's position: delivered first on activation.
    func setReplay(channel: String, items: [Delivery], through lastSequence: Int64) {
        self.state.withLock { state in
            state.channels[channel]?.replayedThrough = lastSequence
            state.replay.append(contentsOf: items)
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
        let actions = self.state.withLock { state -> [Action] in
            guard case .starting = state.phase else { return [] }
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
            return actions
        }
        self.perform(actions)
    }

    /// The SSE event that tells a client its position on `channel` was lost (documented in the README).
    static func resetEvent(channel: String) -> [UInt8] {
        Array("event: reset\ndata: \(channel)\n\n".utf8)
    }

    // MARK: - Delivery

    /// An item committed on one of the session's channels (called in each channel's delivery order).
    func deliver(_ delivery: Delivery) {
        let action = self.state.withLock { state -> Action? in
            switch state.phase {
            case .ended:
                return nil
            case .starting:
                state.buffered.append(delivery)
                return nil
            case .live:
                guard delivery.sequence > (state.channels[delivery.channel]?.replayedThrough ?? 0) else {
                    return nil
                }
                return self.decide(delivery, fromLog: false, &state)
            }
        }
        if let action {
            self.perform([action])
        }
    }

    /// What one item does to the session. Items from the log follow the log's order, so their prev-ids are not
    /// checked; live items are checked against the client's position (grip-spec §5.2).
    private func decide(_ delivery: Delivery, fromLog: Bool, _ state: inout State) -> Action? {
        guard case .live = state.phase, var channel = state.channels[delivery.channel] else { return nil }
        guard Self.passesFilters(delivery, channel: delivery.channel, request: self.request) else { return nil }
        let inSequence = fromLog || channel.expectedPrevID == nil || delivery.prevID == channel.expectedPrevID
        switch self.request.mode {
        case .response:
            guard let format = delivery.formats.httpResponse else { return nil }
            if !inSequence && !self.request.isRecovery {
                return self.endForRecovery(&state)
            }
            switch format.action {
            case .close, .refresh:
                return nil
            case .hint:
                return self.endForRecovery(&state)
            case .send:
                state.phase = .ended
                self.hub.counters.deliveries.add(1, ordering: .relaxed)
                self.hub.counters.metrics?.delivered(mode: "response", committedAt: delivery.committedAt)
                return .respond(self.response(for: format))
            }
        case .stream:
            guard let format = delivery.formats.httpStream else { return nil }
            if !inSequence && self.request.hasNextLink {
                return self.endForRecovery(&state)
            }
            if channel.expectedPrevID != nil || fromLog {
                channel.expectedPrevID = delivery.id
                state.channels[delivery.channel] = channel
            }
            switch format.action {
            case .close:
                state.phase = .ended
                return .endStream
            case .hint:
                return self.request.hasNextLink ? self.endForRecovery(&state) : nil
            case .refresh:
                return nil
            case .send:
                self.hub.counters.deliveries.add(1, ordering: .relaxed)
                self.hub.counters.metrics?.delivered(mode: "stream", committedAt: delivery.committedAt)
                return .content(format.content)
            }
        case .none:
            return nil
        }
    }

    private func endForRecovery(_ state: inout State) -> Action {
        state.phase = .ended
        self.hub.counters.recoveries.add(1, ordering: .relaxed)
        return .recover(Self.gripLast(state, request: self.request))
    }

    /// The response a published `http-response` releases a long-poll with (grip-spec §3.4 steps 4-5).
    private func response(for format: HTTPResponseFormat) -> Instruct.Response {
        let original = self.request.response
        let headers = format.mergedHeaders(over: original.headers).filter { !$0.hasName("Content-Length") }
        switch format.body {
        case .bytes(let body):
            return Instruct.Response(
                code: format.effectiveCode,
                reason: format.effectiveReason,
                headers: headers,
                body: body
            )
        case .patch(let operations):
            do {
                let body = try JSONPatch.apply(operations, toBody: original.body)
                return Instruct.Response(
                    code: format.effectiveCode,
                    reason: format.effectiveReason,
                    headers: headers,
                    body: body
                )
            } catch {
                return Instruct.Response(
                    code: 502,
                    reason: "Bad Gateway",
                    headers: [HeaderField(name: "Content-Type", value: "text/plain")],
                    body: Array("Failed to apply body-patch: \(error)\n".utf8)
                )
            }
        }
    }

    /// The delivery filters of grip-spec §3.7 (`skip-self`, `skip-users`, `require-sub`).
    private static func passesFilters(_ delivery: Delivery, channel: String, request: HoldRequest) -> Bool {
        guard let filters = request.channels.first(where: { $0.name == channel })?.filters, !filters.isEmpty else {
            return true
        }
        return DeliveryFilters.passes(delivery, filters: filters, user: request.meta["user"]) { required in
            request.channels.contains { $0.name == required || $0.backendName == required }
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
            }
        }
    }

    /// `recover` (grip-spec §5.5): ends the session and asks the connection to go back to the backend.
    package func recover() {
        let gripLast = self.state.withLock { state -> [GripLast]? in
            if case .ended = state.phase { return nil }
            state.phase = .ended
            return Self.gripLast(state, request: self.request)
        }
        if let gripLast {
            self.hub.counters.recoveries.add(1, ordering: .relaxed)
            self.hub.sessionEnded(self)
            self.connection.recover(gripLast: gripLast)
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
