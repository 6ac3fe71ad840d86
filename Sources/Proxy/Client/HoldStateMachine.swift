import GRIP
import Publish

/// The decisions of an exchange while the publish side holds its client (``ProxyExchange``'s holds, grip-spec
/// §3.4-3.6), apart from timers, sockets and the hub: what the hub's decision, a publish, a timeout, a filter
/// failure or a recovery means for a long-poll and for a stream. Each method takes an event for a hold (named by
/// its generation: late events for an ended hold do nothing) and returns the actions to carry out, in order.
struct HoldStateMachine {
    /// The hold's data the decisions need.
    struct Hold: Equatable {
        let generation: Int
        let mode: Instruct.HoldMode
        /// The hold's own response: a long-poll's timeout answer, a stream's head and initial body.
        let response: Instruct.Response
        /// Whether keep-alives are sent only after idle periods (`Grip-Keep-Alive` mode `idle`).
        let idleKeepAlive: Bool
        /// Whether the hub decided to hold (the session is this hold's).
        fileprivate(set) var decided = false
    }

    /// The hub's decision, as data (the session itself stays with the exchange).
    enum Decision: Equatable {
        case hold(resetChannels: [String])
        case reset(channels: [String])
        case recover([GripLast])
    }

    enum Action: Equatable {
        /// The hold ends: its timers stop, the hub forgets the client.
        case endHold
        /// A decision came for a hold that has since ended: end the session it brought.
        case discardSession
        /// The hub's session is the hold's: keep it (and count the hold as open).
        case keepSession
        /// Hand the client to the session (it delivers what the client missed, then live items).
        case activateSession
        /// Long-polls: answer with the hold's response when no publish came within the hold's timeout.
        case armResponseTimeout
        /// Streams: the head (once for the client's response), with `P8-Reset` naming channels, then the body.
        case startStream(Instruct.Response, resetChannels: [String])
        /// Streams: the keep-alive timer (again) and the next-link timer (again).
        case armKeepAlive
        case armLinkTimer
        /// Answer a long-poll (a `P8-Reset` header naming `resetChannels` when there are any).
        case respond(Instruct.Response, resetChannels: [String])
        /// A content filter failed on a long-poll: `502`, or the filter's message with `debug` on.
        case respondFilterError(String)
        case writeContent([UInt8])
        /// End the stream cleanly, with a debug message first when the route has `debug` on.
        case endStream(debugMessage: String?)
        /// Send the client's request again, with `Grip-Last` headers (long-polls, grip-spec §5.2).
        case retryRequest([GripLast])
        /// Fetch the stream's next link, with `Grip-Last` headers (or end the stream without one).
        case fetchNextLink([GripLast])
    }

    private(set) var hold: Hold?
    /// Counts holds, so that late events for an ended hold are recognised.
    private(set) var generation = 0
    /// Whether a stream's head has been written (a stream outlives the holds and next links that feed it); the
    /// exchange sets it when it writes the head.
    var streamStarted = false

    /// A new hold (replacing any): returns its generation.
    mutating func begin(mode: Instruct.HoldMode, response: Instruct.Response, idleKeepAlive: Bool) -> Int {
        self.generation += 1
        self.hold = Hold(generation: self.generation, mode: mode, response: response, idleKeepAlive: idleKeepAlive)
        return self.generation
    }

    /// The hold ended (the exchange carried out ``Action/endHold``, or ended it itself).
    mutating func end() {
        self.hold = nil
    }

    private func current(_ generation: Int) -> Hold? {
        guard let hold = self.hold, hold.generation == generation else { return nil }
        return hold
    }

    /// The hub decided how the hold starts.
    mutating func decided(_ decision: Decision, generation: Int) -> [Action] {
        guard let hold = self.current(generation) else { return [.discardSession] }
        switch decision {
        case .hold(let resetChannels):
            self.hold?.decided = true
            if hold.mode == .response {
                return [.keepSession, .armResponseTimeout, .activateSession]
            }
            return [
                .keepSession, .startStream(hold.response, resetChannels: resetChannels), .armKeepAlive, .armLinkTimer,
                .activateSession,
            ]
        case .reset(let channels):
            self.hold = nil
            return [.endHold, .respond(hold.response, resetChannels: channels)]
        case .recover(let gripLast):
            if hold.mode == .response {
                self.hold = nil
                return [.endHold, .retryRequest(gripLast)]
            }
            return [.startStream(hold.response, resetChannels: []), .fetchNextLink(gripLast)]
        }
    }

    /// A long-poll's timeout passed without a publish.
    mutating func timedOut(generation: Int) -> [Action] {
        guard let hold = self.current(generation) else { return [] }
        self.hold = nil
        return [.endHold, .respond(hold.response, resetChannels: [])]
    }

    /// A publish released the long-poll.
    mutating func released(_ response: Instruct.Response, generation: Int) -> [Action] {
        guard self.current(generation) != nil else { return [] }
        self.hold = nil
        return [.endHold, .respond(response, resetChannels: [])]
    }

    /// Published content for the stream.
    func content(_ content: [UInt8], generation: Int) -> [Action] {
        guard let hold = self.current(generation), self.streamStarted else { return [] }
        return hold.idleKeepAlive
            ? [.writeContent(content), .armKeepAlive, .armLinkTimer] : [.writeContent(content), .armLinkTimer]
    }

    /// A content filter failed on a delivered item (the session has ended).
    mutating func filterFailed(_ message: String, generation: Int) -> [Action] {
        guard let hold = self.current(generation) else { return [] }
        if hold.mode == .response {
            self.hold = nil
            return [.endHold, .respondFilterError(message)]
        }
        return [.endStream(debugMessage: message)]
    }

    /// A published `close` action.
    func streamClosed(generation: Int) -> [Action] {
        guard self.current(generation) != nil else { return [] }
        return [.endStream(debugMessage: nil)]
    }

    /// The publish side asks the backend to fill a gap.
    mutating func recover(_ gripLast: [GripLast], generation: Int) -> [Action] {
        guard let hold = self.current(generation) else { return [] }
        if hold.mode == .response {
            self.hold = nil
            return [.endHold, .retryRequest(gripLast)]
        }
        return [.fetchNextLink(gripLast)]
    }

    /// The server is shutting down: a long-poll gets its timeout response now, a stream ends cleanly.
    /// `backendRequestFinished`: no backend request is in flight for the client (else it answers).
    mutating func quiesce(backendRequestFinished: Bool) -> [Action] {
        guard let hold = self.hold, backendRequestFinished else { return [] }
        if hold.mode == .response {
            return self.timedOut(generation: hold.generation)
        }
        return [.endStream(debugMessage: nil)]
    }

    /// What a next link's GRIP answer means for the stream (its body goes to the stream first).
    enum NextLinkOutcome: Equatable {
        /// End the stream, with this debug message.
        case endStream(debugMessage: String?)
        /// Append the answer's body, then end the stream.
        case appendAndEnd
        /// Hold again (or follow the answer's own next link).
        case holdAgain
    }

    static func nextLinkAnswered(mode: Instruct.HoldMode, hasNextLink: Bool) -> NextLinkOutcome {
        switch mode {
        case .response:
            return .endStream(debugMessage: "Next link returned non-stream hold.")
        case .none where !hasNextLink:
            return .appendAndEnd
        case .none, .stream:
            return .holdAgain
        }
    }
}
