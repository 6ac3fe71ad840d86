import GRIP
import Prometheus
import Publish
import Store

/// The Prometheus side of the metrics: a registry of this server's own (not the process-wide default, so that
/// servers in one test process do not share values), the ``P8Metrics`` recording into it, and the scrape that
/// brings levels up to date and renders the text exposition with Pushpin's `# HELP` lines.
struct MetricsExport: Sendable {
    let metrics: P8Metrics
    private let registry: PrometheusCollectorRegistry
    private let prefix: String

    init(configuration: MetricsConfiguration) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Latencies from 100 µs (a delivery from memory) to 10 s.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.prefix = configuration.prefix
        self.metrics = P8Metrics(factory: factory, prefix: configuration.prefix)
    }

    /// The exposition text, after a refresh from `hub` and `store`.
    /// Store levels and read sources come from either backend (on PostgreSQL, the whole database's levels).
    func scrape(hub: PublishHub, store: any ChannelLogStore) async -> [UInt8] {
        let levels = try? await store.levels()
        self.metrics.refresh(counters: hub.counters, store: levels, reads: store.readSources)
        return Self.addingHelp(self.registry.emitToString(), prefix: self.prefix)
    }

    /// Puts a `# HELP` line before each `# TYPE` line whose metric has a help text.
    static func addingHelp(_ text: String, prefix: String) -> [UInt8] {
        var out = ""
        out.reserveCapacity(text.utf8.count + 2048)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst("# TYPE ".count).prefix { $0 != " " }
                if name.hasPrefix(prefix), let help = P8Metrics.help[String(name.dropFirst(prefix.count))] {
                    out += "# HELP \(name) \(help)\n"
                }
            }
            out += line
            out += "\n"
        }
        if out.hasSuffix("\n\n") {
            out.removeLast()
        }
        return Array(out.utf8)
    }
}
