/// The Prometheus endpoint (`prometheus_port`, `prometheus_prefix` in `[proxy]` or `[handler]`, grip-spec §4.6).
/// P-8 runs one process, so one endpoint serves every metric; `[proxy]` wins when both sections set a key.
package struct MetricsConfiguration: Sendable, Hashable {
    /// Where the endpoint listens (`port` on every interface, or `addr:port`); nil when unset (no endpoint).
    package var listen: ListenAddress?
    /// Prepended to every metric name (`prometheus_prefix`, default empty).
    package var prefix: String

    package init(listen: ListenAddress? = nil, prefix: String = "") {
        self.listen = listen
        self.prefix = prefix
    }
}
