/// Which of a request's targets to connect to next, and how: the decisions of ``BackendExchange``, kept apart
/// from the sockets so that they can be tested event by event.
///
/// A request starts at a target (the route's first, or the one an earlier request settled on), fails over to the
/// next target when a connection cannot be made, and is sent once more on a fresh connection when a pooled one
/// turns out to have been closed by the backend while it was idle.
struct BackendAttempts: Equatable {
    /// What to do next.
    enum Action: Equatable {
        /// Connect to `targets[index]`; `fresh` never takes a pooled connection.
        case connect(index: Int, fresh: Bool)
        /// No target could be reached: the request fails.
        case unavailable
    }

    /// How many targets there are.
    let targetCount: Int
    /// Whether a failed connect moves on to the next target.
    var failover: Bool
    /// The target of the current attempt.
    private(set) var index = 0
    /// Whether the current request was already sent again on a fresh connection.
    private(set) var retriedOnFreshConnection = false

    init(targetCount: Int, failover: Bool = true) {
        self.targetCount = targetCount
        self.failover = failover
    }

    /// A new request: from the first target, or from the current one when `fromFirstTarget` is false.
    mutating func begin(fromFirstTarget: Bool = true) -> Action {
        if fromFirstTarget {
            self.index = 0
        }
        self.retriedOnFreshConnection = false
        guard self.index < self.targetCount else { return .unavailable }
        return .connect(index: self.index, fresh: false)
    }

    /// A connect failed (or the target cannot be connected to): the next target, if failing over.
    mutating func connectFailed() -> Action {
        guard self.failover, self.index + 1 < self.targetCount else { return .unavailable }
        self.index += 1
        return .connect(index: self.index, fresh: false)
    }

    /// The connection closed before any response byte. A connection that had served an earlier request was
    /// probably closed by the backend while idle: the request goes once more to the same target on a fresh
    /// connection, when the caller can still send it whole (`replayable`).
    ///
    /// - Returns: nil when the failure stands.
    mutating func closedBeforeResponse(connectionWasReused: Bool, replayable: Bool) -> Action? {
        guard connectionWasReused, replayable, !self.retriedOnFreshConnection else { return nil }
        self.retriedOnFreshConnection = true
        return .connect(index: self.index, fresh: true)
    }

    /// The caller tries the current target again later, on a fresh connection (WebSocket-over-HTTP's retries).
    mutating func retry() -> Action {
        guard self.index < self.targetCount else { return .unavailable }
        return .connect(index: self.index, fresh: true)
    }
}
