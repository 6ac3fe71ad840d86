/// The `[runner]` section.
package struct RunnerConfiguration: Sendable, Hashable {
    /// Plain-HTTP client listeners (`http_port`: a comma list of `port`, `addr:port` or `[ipv6]:port`; default
    /// `0.0.0.0:7999`). Never shifted by `port_offset`.
    package var httpListeners: [ListenAddress]
    /// Absolute log directory (`logdir`, default `log` beside the config file).
    package var logdir: String
    /// Pushpin log level 0 (error) ... 3 (debug) (`log_level`, default 2; of `N,service:M,...` only `N` is
    /// kept).
    package var logLevel: Int
    /// Maximum request header size per client connection (`client_buffer_size`, default 8192).
    package var clientBufferSize: Int
    /// Maximum client connections (`client_maxconn`, default 50000).
    package var clientMaxConn: Int
    /// Pushpin's `services` list: the runner reports the names it ignores (P-8 runs `proxy` and `handler`
    /// together in its server process).
    package var services: [String]
    /// TLS client listeners (`https_ports`) and where their certificates are.
    package var tls = TLSListenConfiguration(certsDirectory: "runner/certs")

    /// Creates the section's values.
    package init(
        httpListeners: [ListenAddress] = [ListenAddress(host: "0.0.0.0", port: 7999)],
        logdir: String,
        logLevel: Int = 2,
        clientBufferSize: Int = 8192,
        clientMaxConn: Int = 50_000,
        services: [String] = []
    ) {
        self.httpListeners = httpListeners
        self.logdir = logdir
        self.logLevel = logLevel
        self.clientBufferSize = clientBufferSize
        self.clientMaxConn = clientMaxConn
        self.services = services
    }
}
