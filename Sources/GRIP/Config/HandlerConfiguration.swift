/// The format of stats messages (`[handler] stats_format`).
package enum StatsFormat: String, Sendable, Hashable {
    /// TNetStrings (the default).
    case tnetstring
    /// JSON.
    case json
}

/// The `[handler]` section: publish inputs, the HTTP control API, delivery limits.
///
/// Spec strings are ZeroMQ endpoints with templates substituted and `port_offset` applied; an empty string
/// means the socket is disabled.
package struct HandlerConfiguration: Sendable, Hashable {
    /// ZMQ PULL publish input, bound (`push_in_spec`, default `tcp://127.0.0.1:5560`).
    package var pushInSpec: String
    /// ZMQ SUB publish inputs (`push_in_sub_specs`, or the deprecated singular `push_in_sub_spec`; default
    /// `tcp://127.0.0.1:5562`).
    package var pushInSubSpecs: [String]
    /// Connect the SUB sockets instead of binding them (`push_in_sub_connect`, default false).
    package var pushInSubConnect: Bool
    /// HTTP control API address (`push_in_http_addr`, default `127.0.0.1`).
    package var pushInHTTPAddr: String
    /// HTTP control API port with `port_offset` applied (`push_in_http_port`, default 5561).
    package var pushInHTTPPort: Int
    /// ZMQ PUB stats socket (`stats_spec`, default `ipc://{rundir}/{ipc_prefix}stats`).
    package var statsSpec: String
    /// ZMQ REP command socket (`command_spec`, default `tcp://127.0.0.1:5563`).
    package var commandSpec: String
    /// Deliveries per second (`message_rate`); nil means unlimited.
    package var messageRate: Int?
    /// Pending deliveries per route (`message_hwm`); nil means unlimited.
    package var messageHWM: Int?
    /// Reorder buffer wait in milliseconds (`message_wait`, default 5000).
    package var messageWait: Int
    /// De-duplication window in seconds (`id_cache_ttl`, default 60).
    package var idCacheTTL: Int
    /// Response-mode subscription linger in seconds (`subscription_linger`, default 60).
    package var subscriptionLinger: Int
    /// Channels per connection (`connection_subscription_max`, default 20).
    package var connectionSubscriptionMax: Int
    /// `stats_format` (default `tnetstring`).
    package var statsFormat: StatsFormat
    /// Stats report period in seconds (`stats_report_interval`, default 10).
    package var statsReportInterval: Int
    /// Prometheus port (`prometheus_port`, never offset); nil when unset.
    package var prometheusPort: Int?
    /// Maximum body of a publish request in bytes (`push_in_http_max_body_size`, default 1000000).
    package var pushInHTTPMaxBodySize: Int
    /// P-8: key for JWT authentication of the HTTP publish API (`push_in_http_key`); nil when empty (no
    /// authentication).
    package var publishKey: SigningKey?

    /// Creates the section's values.
    package init(
        pushInSpec: String = "tcp://127.0.0.1:5560",
        pushInSubSpecs: [String] = ["tcp://127.0.0.1:5562"],
        pushInSubConnect: Bool = false,
        pushInHTTPAddr: String = "127.0.0.1",
        pushInHTTPPort: Int = 5561,
        statsSpec: String,
        commandSpec: String = "tcp://127.0.0.1:5563",
        messageRate: Int? = nil,
        messageHWM: Int? = nil,
        messageWait: Int = 5000,
        idCacheTTL: Int = 60,
        subscriptionLinger: Int = 60,
        connectionSubscriptionMax: Int = 20,
        statsFormat: StatsFormat = .tnetstring,
        statsReportInterval: Int = 10,
        prometheusPort: Int? = nil,
        pushInHTTPMaxBodySize: Int = 1_000_000,
        publishKey: SigningKey? = nil
    ) {
        self.pushInSpec = pushInSpec
        self.pushInSubSpecs = pushInSubSpecs
        self.pushInSubConnect = pushInSubConnect
        self.pushInHTTPAddr = pushInHTTPAddr
        self.pushInHTTPPort = pushInHTTPPort
        self.statsSpec = statsSpec
        self.commandSpec = commandSpec
        self.messageRate = messageRate
        self.messageHWM = messageHWM
        self.messageWait = messageWait
        self.idCacheTTL = idCacheTTL
        self.subscriptionLinger = subscriptionLinger
        self.connectionSubscriptionMax = connectionSubscriptionMax
        self.statsFormat = statsFormat
        self.statsReportInterval = statsReportInterval
        self.prometheusPort = prometheusPort
        self.pushInHTTPMaxBodySize = pushInHTTPMaxBodySize
        self.publishKey = publishKey
    }
}
