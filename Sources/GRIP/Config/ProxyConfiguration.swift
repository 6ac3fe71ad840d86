/// Which `X-Forwarded-Proto` headers the proxy sends for TLS requests (`[proxy] set_x_forwarded_protocol`).
package enum XForwardedProtocolMode: String, Sendable, Hashable {
    /// Send neither header (any value other than `proto-only` or `true`).
    case off
    /// `proto-only` (the default): send `X-Forwarded-Proto: https|wss`.
    case protoOnly
    /// `true`: also send the legacy `X-Forwarded-Protocol`.
    case protoAndProtocol
}

/// The `[proxy]` section.
package struct ProxyConfiguration: Sendable, Hashable {
    /// Absolute path of the routes file (`routesfile`, default `routes` beside the config file).
    package var routesFile: String
    /// Informative error bodies (`debug`, default false).
    package var debug: Bool
    /// CORS and JSON-P for every route (`auto_cross_origin`, default false).
    package var autoCrossOrigin: Bool
    /// Trust an incoming `X-Forwarded-Proto`/`-Protocol` of `https`/`wss` (`accept_x_forwarded_protocol`).
    package var acceptXForwardedProtocol: Bool
    /// `set_x_forwarded_protocol` (default `proto-only`).
    package var setXForwardedProtocol: XForwardedProtocolMode
    /// `x_forwarded_for`: the rule for untrusted clients (default empty: header untouched).
    package var xForwardedFor: XForwardedForRule
    /// `x_forwarded_for_trusted`: the rule for clients trusted through `upstream_key`.
    package var xForwardedForTrusted: XForwardedForRule
    /// Honour `Pushpin-Route: <id>` (`accept_pushpin_route`, default false).
    package var acceptPushpinRoute: Bool
    /// Grip-Sig issuer (`sig_iss`, default `pushpin`).
    package var sigIss: String
    /// Grip-Sig key (`sig_key`); nil when empty, and then P-8 does not sign (Pushpin 1.36 signs with an empty
    /// secret).
    package var sigKey: SigningKey?
    /// Key that marks a client as a trusted upstream GRIP proxy (`upstream_key`); nil when empty: no client is
    /// ever trusted (Pushpin 1.36 trusts tokens signed with an empty secret).
    package var upstreamKey: SigningKey?
    /// Cap on concurrent proxied requests (`max_open_requests`); nil means unlimited.
    package var maxOpenRequests: Int?
    /// P-8: seconds to wait for a backend connection before trying the next target
    /// (`backend_connect_timeout`, default 10).
    package var backendConnectTimeout: Int
    /// P-8: seconds to wait for the backend's response head or the next body bytes before answering 504
    /// (`backend_response_timeout`, default 60).
    package var backendResponseTimeout: Int
    /// P-8: largest WebSocket frame payload a client (or a passthrough backend) may send, in bytes; a larger
    /// frame closes the connection with 1009 (`websocket_max_frame_size`, default 1 MiB).
    package var webSocketMaxFrameBytes: Int
    /// P-8: largest WebSocket message, all its frames together, in bytes; larger closes with 1009
    /// (`websocket_max_message_size`, default 1 MiB).
    package var webSocketMaxMessageBytes: Int

    /// Creates the section's values.
    package init(
        routesFile: String,
        debug: Bool = false,
        autoCrossOrigin: Bool = false,
        acceptXForwardedProtocol: Bool = false,
        setXForwardedProtocol: XForwardedProtocolMode = .protoOnly,
        xForwardedFor: XForwardedForRule = XForwardedForRule(),
        xForwardedForTrusted: XForwardedForRule = XForwardedForRule(),
        acceptPushpinRoute: Bool = false,
        sigIss: String = "pushpin",
        sigKey: SigningKey? = nil,
        upstreamKey: SigningKey? = nil,
        maxOpenRequests: Int? = nil,
        backendConnectTimeout: Int = 10,
        backendResponseTimeout: Int = 60,
        webSocketMaxFrameBytes: Int = 1 << 20,
        webSocketMaxMessageBytes: Int = 1 << 20
    ) {
        self.routesFile = routesFile
        self.debug = debug
        self.autoCrossOrigin = autoCrossOrigin
        self.acceptXForwardedProtocol = acceptXForwardedProtocol
        self.setXForwardedProtocol = setXForwardedProtocol
        self.xForwardedFor = xForwardedFor
        self.xForwardedForTrusted = xForwardedForTrusted
        self.acceptPushpinRoute = acceptPushpinRoute
        self.sigIss = sigIss
        self.sigKey = sigKey
        self.upstreamKey = upstreamKey
        self.maxOpenRequests = maxOpenRequests
        self.backendConnectTimeout = backendConnectTimeout
        self.backendResponseTimeout = backendResponseTimeout
        self.webSocketMaxFrameBytes = webSocketMaxFrameBytes
        self.webSocketMaxMessageBytes = webSocketMaxMessageBytes
    }
}
