import GRIP

/// One WebSocket-over-HTTP connection as data (grip-spec §7.2-7.4): where it stands, what is queued for and in
/// flight to the backend, the backend's `Set-Meta-*` values and keep-alive schedule, and the channels the client
/// is subscribed to. ``WebSocketOverHTTPStateMachine`` runs on it; a machine made from a session goes on where the
/// session stood, which is what a process taking over held connections needs.
struct WebSocketOverHTTPSession: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        /// The `OPEN` request is in flight; the client is still an HTTP request.
        case opening
        /// Upgraded; messages flow both ways.
        case open
        /// The backend side is closed (`detach`): client messages are discarded, publishes still delivered.
        case detached
        /// The client connection is closing or gone; at most a last `CLOSE`/`DISCONNECT` goes to the backend.
        case closing
    }

    /// A close frame from the client, waiting for the backend's answer to be passed back.
    struct ClientClose: Sendable, Equatable {
        var code: UInt16?
        var reason: [UInt8]
    }

    /// A channel the client is subscribed to (route prefix included), with the id it was subscribed from.
    struct Subscription: Sendable, Equatable {
        var channel: String
        var lastID: String?
    }

    /// The `Connection-Id` header, constant for the connection (also its id on the publish side).
    let connectionID: String
    var phase = Phase.opening
    /// Whether the client's connection is upgraded and still there.
    var clientAttached = false
    /// Whether the target sends one event per request (the `one_event` target option).
    var oneEventPerRequest: Bool
    /// `Set-Meta-*` values, echoed as `Meta-*` on every request.
    var meta: [String: String] = [:]
    /// Seconds between keep-alive requests (`Keep-Alive-Interval`), when the backend asked for them.
    var keepAliveInterval: Int?
    /// Events waiting for the next request.
    var queued: [WebSocketEvent] = []
    /// The events of the request in flight, if one is.
    var inFlight: [WebSocketEvent]?
    /// Attempts made again at the request in flight because it could not connect.
    var connectRetries = 0
    var clientClose: ClientClose?
    /// Filled in by ``WebSocketOverHTTP/session`` from the publish side; the state machine does not read it.
    var subscriptions: [Subscription] = []

    init(connectionID: String, oneEventPerRequest: Bool) {
        self.connectionID = connectionID
        self.oneEventPerRequest = oneEventPerRequest
    }
}

extension WebSocketEvent {
    /// Bytes of message content the event carries, against ``WebSocketOverHTTPStateMachine/maxRequestContent``.
    var contentSize: Int {
        switch self {
        case .text(let content), .binary(let content), .ping(let content), .pong(let content): content.count
        case .close(_, let reason): reason.count + 2
        case .open, .disconnect: 0
        }
    }
}
