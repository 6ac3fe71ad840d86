package import GRIP

/// What the client-facing proxy needs to know, distilled from `p-8.conf` by the runner.
package struct ProxySettings: Sendable {
    /// Where the client port listens (`[runner] http_port`, or `p8 --port`).
    package var listeners: [ListenAddress]
    /// Where the TLS client ports listen (`[runner] https_ports`).
    package var tlsListeners: [ListenAddress]
    /// The `[proxy]` section.
    package var proxy: ProxyConfiguration
    /// Largest request head a client may send (`[runner] client_buffer_size`); larger heads get 431.
    package var maxRequestHeadBytes: Int
    /// How long open streams may run on after a graceful shutdown starts, before they are ended.
    package var shutdownGracePeriodSeconds: Int
    /// Most client connections open at once (`[runner] client_maxconn`); more are closed as they arrive.
    package var maxConnections: Int

    package init(
        listeners: [ListenAddress],
        tlsListeners: [ListenAddress] = [],
        proxy: ProxyConfiguration,
        maxRequestHeadBytes: Int = 8192,
        shutdownGracePeriodSeconds: Int = 5,
        maxConnections: Int = 50_000
    ) {
        self.listeners = listeners
        self.tlsListeners = tlsListeners
        self.proxy = proxy
        self.maxRequestHeadBytes = maxRequestHeadBytes
        self.shutdownGracePeriodSeconds = shutdownGracePeriodSeconds
        self.maxConnections = maxConnections
    }
}

/// Limits that Pushpin hard-codes and P-8 keeps for compatibility (grip-spec §8.5).
enum ProxyLimits {
    /// Request body bytes kept so a request can be retried on a fresh backend connection, and the largest
    /// request body that may still be answered with GRIP instructions.
    static let maxBufferedRequestBody = 100_000
    /// Largest GRIP instruct response body accepted from a backend.
    static let maxGripResponseBody = 100_000
    /// Client body bytes queued while the backend connection is being opened before the client is paused.
    static let maxPendingRequestBody = 256 * 1024
    /// Idle keep-alive connections kept per backend and event loop.
    static let maxIdleBackendConnections = 256
}
