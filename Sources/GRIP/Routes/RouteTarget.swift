/// One target (backend) of a route, tried in order on connect failures (grip-spec §2.4).
package struct RouteTarget: Sendable, Hashable {
    /// Where requests go.
    package enum Kind: Sendable, Hashable {
        /// A backend at `host:port` (port 1...65535; IPv6 literals written `[addr]:port`, stored without
        /// brackets).
        case host(host: String, port: Int)
        /// The built-in test handler (`test`).
        case test
    }

    /// Where requests go.
    package var kind: Kind
    /// Use https/wss toward the backend (`ssl`).
    package var ssl: Bool
    /// Do not verify the backend's TLS certificate (`insecure`).
    package var insecure: Bool
    /// Verify the certificate against the connect host rather than the Host header (`trust_connect_host`).
    package var trustConnectHost: Bool
    /// Override of the `Host` header / URI host sent to this target (`host=H[:port]`).
    package var hostHeader: String?
    /// Gateway WebSocket clients with WebSocket-over-HTTP (`over_http`).
    package var overHTTP: Bool
    /// With `over_http`: at most one event per backend request (`one_event`).
    package var oneEvent: Bool
    /// The target is untrusted (`untrusted`): Pushpin applies its allow/deny policy and does not follow
    /// next links to other hosts blindly.
    package var untrusted: Bool
    /// Implicit subscriptions (`sub=`, repeatable; empty values dropped).
    package var subscriptions: [String]

    /// Creates a target.
    package init(
        kind: Kind,
        ssl: Bool = false,
        insecure: Bool = false,
        trustConnectHost: Bool = false,
        hostHeader: String? = nil,
        overHTTP: Bool = false,
        oneEvent: Bool = false,
        untrusted: Bool = false,
        subscriptions: [String] = []
    ) {
        self.kind = kind
        self.ssl = ssl
        self.insecure = insecure
        self.trustConnectHost = trustConnectHost
        self.hostHeader = hostHeader
        self.overHTTP = overHTTP
        self.oneEvent = oneEvent
        self.untrusted = untrusted
        self.subscriptions = subscriptions
    }
}
