/// Where the ZeroMQ sockets ended up, with wildcard ports (`tcp://127.0.0.1:*`) resolved: what the command
/// socket's `get-zmq-uris` reports and tests connect to. Nil or empty: the socket is disabled.
package struct ZMQEndpoints: Sendable, Hashable {
    /// The PULL publish input.
    package var pull: String?
    /// The SUB publish inputs that are bound (connected ones are the publishers' addresses).
    package var sub: [String]
    /// The command socket.
    package var command: String?
    /// The stats socket.
    package var stats: String?

    /// Creates a set of endpoints.
    package init(pull: String? = nil, sub: [String] = [], command: String? = nil, stats: String? = nil) {
        self.pull = pull
        self.sub = sub
        self.command = command
        self.stats = stats
    }
}
