package import Metrics
package import Store
import Synchronization

/// Every metric P-8 exports, recorded through swift-metrics with the factory the runner gives (Prometheus when
/// `prometheus_port` is set). Event counts and latencies are recorded where they happen; levels (connections,
/// holds, store size) and the publish counters kept in ``PublishCounters`` are brought up to date by
/// ``refresh(counters:store:)`` just before each scrape. No label takes unbounded values: modes, transports,
/// sources and status classes are fixed sets, and route ids come from the routes file.
package final class P8Metrics: Sendable {
    /// `# HELP` texts by unprefixed name (swift-metrics has no help text; the endpoint adds these lines).
    package static let help: [String: String] = [
        "request_received": "Number of requests received",
        "connection_connected": "Number of client connections currently connected",
        "connection_minute": "Number of minutes clients have been connected",
        "message_received": "Number of messages received by the publish API",
        "message_sent": "Number of messages sent to clients",
        "p8_held_connections": "Held client connections by mode (response, stream, ws)",
        "p8_deliveries_total": "Published items handed to held connections, by mode",
        "p8_publish_items_received_total": "Items received by a publish input, before de-duplication",
        "p8_publish_items_committed_total": "Items committed to the store",
        "p8_publish_items_deduplicated_total": "Items dropped as re-sent (channel, id)",
        "p8_publish_commit_seconds": "Time from a publish request's items being parsed to their commit",
        "p8_publish_delivery_seconds": "Time from an item's commit to its hand-off to a held connection",
        "p8_resumes_total": "Holds that resumed from a position with items read from the log",
        "p8_store_reads_total": "Log reads for resumes, by where the items came from (memory tail or database)",
        "client_recover": "Position resumes: recovered=true when resumed, false when reset",
        "p8_backend_recoveries_total": "Recoveries through the backend (re-sent requests, next links with Grip-Last)",
        "p8_slow_clients_disconnected_total": "Clients disconnected for not reading, by transport",
        "p8_websocket_sessions": "Open client WebSocket connections",
        "p8_backend_requests_total": "Backend requests by route and status class (error: no response)",
        "p8_backend_request_seconds": "Time from sending a backend request to its response head, by route",
        "p8_store_bytes": "Bytes of retained items in the store",
        "p8_store_items": "Retained items in the store",
        "p8_store_channels": "Channels in the store",
        "p8_retention_removed_total": "Items removed by retention",
        "p8_sequencer_timeouts_total":
            "Items released by the reordering buffer after message_wait without their predecessor",
    ]

    private let factory: any MetricsFactory
    private let prefix: String

    private let requestReceived: Counter
    private let connectionConnected: Gauge
    private let connectionMinute: Counter
    private let messageReceived: Counter
    private let messageSent: Counter
    private let held: [String: Gauge]
    private let deliveries: [String: Counter]
    private let itemsReceived: Counter
    private let itemsCommitted: Counter
    private let itemsDeduplicated: Counter
    private let commitLatency: Metrics.Timer
    private let deliveryLatency: Metrics.Timer
    private let resumes: Counter
    private let readsFromMemory: Counter
    private let readsFromDatabase: Counter
    private let recovered: Counter
    private let notRecovered: Counter
    private let backendRecoveries: Counter
    private let slowClients: [String: Counter]
    private let webSocketSessions: Gauge
    private let storeBytes: Gauge
    private let storeItems: Gauge
    private let storeChannels: Gauge
    private let retentionRemoved: Counter
    private let sequencerTimeouts: Counter
    private let backendByRoute = Mutex<[String: BackendRouteMetrics]>([:])

    /// Levels the proxy keeps up to date: open client connections, held connections by mode, WebSockets.
    private let openConnections = Atomic<Int>(0)
    private let heldResponses = Atomic<Int>(0)
    private let heldStreams = Atomic<Int>(0)
    private let openWebSockets = Atomic<Int>(0)
    /// Connection time: milliseconds of closed connections, the open count and the sum of their start times, so
    /// that the total at any instant is closed + open × now − starts.
    private let connectionTime = Mutex<(closedMilliseconds: Int64, open: Int64, openStartSum: Int64)>((0, 0, 0))
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant
    /// What the last refresh saw of the monotonic values it bridges.
    private let bridged = Mutex<[String: Int64]>([:])

    package init(factory: any MetricsFactory, prefix: String = "") {
        self.factory = factory
        self.prefix = prefix
        self.origin = self.clock.now
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: prefix + name, dimensions: dimensions, factory: factory)
        }
        func gauge(_ name: String, _ dimensions: [(String, String)] = []) -> Gauge {
            Gauge(label: prefix + name, dimensions: dimensions, factory: factory)
        }
        func timer(_ name: String) -> Metrics.Timer {
            Metrics.Timer(label: prefix + name, dimensions: [], factory: factory)
        }
        self.requestReceived = counter("request_received")
        self.connectionConnected = gauge("connection_connected")
        self.connectionMinute = counter("connection_minute")
        self.messageReceived = counter("message_received")
        self.messageSent = counter("message_sent")
        let modes = ["response", "stream", "ws"]
        self.held = Dictionary(uniqueKeysWithValues: modes.map { ($0, gauge("p8_held_connections", [("mode", $0)])) })
        self.deliveries = Dictionary(
            uniqueKeysWithValues: modes.map { ($0, counter("p8_deliveries_total", [("mode", $0)])) }
        )
        self.itemsReceived = counter("p8_publish_items_received_total")
        self.itemsCommitted = counter("p8_publish_items_committed_total")
        self.itemsDeduplicated = counter("p8_publish_items_deduplicated_total")
        self.commitLatency = timer("p8_publish_commit_seconds")
        self.deliveryLatency = timer("p8_publish_delivery_seconds")
        self.resumes = counter("p8_resumes_total")
        self.readsFromMemory = counter("p8_store_reads_total", [("source", "memory")])
        self.readsFromDatabase = counter("p8_store_reads_total", [("source", "database")])
        self.recovered = counter("client_recover", [("recovered", "true")])
        self.notRecovered = counter("client_recover", [("recovered", "false")])
        self.backendRecoveries = counter("p8_backend_recoveries_total")
        self.slowClients = Dictionary(
            uniqueKeysWithValues: ["http-stream", "ws"].map {
                ($0, counter("p8_slow_clients_disconnected_total", [("transport", $0)]))
            }
        )
        self.webSocketSessions = gauge("p8_websocket_sessions")
        self.storeBytes = gauge("p8_store_bytes")
        self.storeItems = gauge("p8_store_items")
        self.storeChannels = gauge("p8_store_channels")
        self.retentionRemoved = counter("p8_retention_removed_total")
        self.sequencerTimeouts = counter("p8_sequencer_timeouts_total")
    }

    // MARK: - Events

    /// Retention removed `count` items.
    package func retentionRemoved(_ count: Int) {
        self.retentionRemoved.increment(by: Int64(count))
    }

    /// Pushpin's `request_received`: a client request (an HTTP request or a WebSocket handshake) arrived.
    package func requestStarted() {
        self.requestReceived.increment()
    }

    /// A publish request's items were committed, `duration` after the request was parsed.
    package func committed(after duration: Duration) {
        self.commitLatency.recordNanoseconds(Self.nanoseconds(duration))
    }

    /// A published item was handed to a held connection of `mode` (`response`, `stream` or `ws`).
    package func delivered(mode: String, committedAt: ContinuousClock.Instant?) {
        self.deliveries[mode]?.increment()
        if let committedAt {
            self.deliveryLatency.recordNanoseconds(Self.nanoseconds(self.clock.now - committedAt))
        }
    }

    /// A client was disconnected because it did not read (`http-stream` or `ws`).
    package func slowClientDisconnected(transport: String) {
        self.slowClients[transport]?.increment()
    }

    /// A backend request of `route` ended: `status` is the response code, nil when there was no response.
    package func backendRequestEnded(route: String, status: Int?, after duration: Duration?) {
        let statusClass = status.map { "\($0 / 100)xx" } ?? "error"
        let metrics = self.backendByRoute.withLock { byRoute in
            if let known = byRoute[route] {
                return known
            }
            let made = BackendRouteMetrics(route: route, prefix: self.prefix, factory: self.factory)
            byRoute[route] = made
            return made
        }
        metrics.requests(statusClass).increment()
        if let duration {
            metrics.latency.recordNanoseconds(Self.nanoseconds(duration))
        }
    }

    package func connectionOpened() {
        self.openConnections.add(1, ordering: .relaxed)
        let now = self.milliseconds()
        self.connectionTime.withLock { time in
            time.open += 1
            time.openStartSum += now
        }
    }

    package func connectionClosed() {
        self.openConnections.subtract(1, ordering: .relaxed)
        let now = self.milliseconds()
        self.connectionTime.withLock { time in
            // Starts are not kept per connection: moving one average open span to the closed total keeps the
            // total where it is, and it grows by the open count from now on.
            guard time.open > 0 else { return }
            let average = (time.open * now - time.openStartSum) / time.open
            time.closedMilliseconds += average
            time.openStartSum -= now - average
            time.open -= 1
        }
    }

    /// A held connection of `mode` started (`opened`) or ended.
    package func holdChanged(stream: Bool, opened: Bool) {
        let change = opened ? 1 : -1
        if stream {
            self.heldStreams.add(change, ordering: .relaxed)
        } else {
            self.heldResponses.add(change, ordering: .relaxed)
        }
    }

    package func webSocketChanged(opened: Bool) {
        if opened {
            self.openWebSockets.add(1, ordering: .relaxed)
        } else {
            self.openWebSockets.subtract(1, ordering: .relaxed)
        }
    }

    // MARK: - Scrape

    /// Brings levels and the values bridged from ``PublishCounters`` up to date.
    package func refresh(counters: PublishCounters, store: StoreLevels?, reads: ReadSources) {
        let webSockets = self.openWebSockets.load(ordering: .relaxed)
        self.connectionConnected.record(self.openConnections.load(ordering: .relaxed))
        self.held["response"]?.record(self.heldResponses.load(ordering: .relaxed))
        self.held["stream"]?.record(self.heldStreams.load(ordering: .relaxed))
        self.held["ws"]?.record(webSockets)
        self.webSocketSessions.record(webSockets)
        if let store {
            self.storeBytes.record(store.bytes)
            self.storeItems.record(store.items)
            self.storeChannels.record(store.channels)
        }
        let now = self.milliseconds()
        let connectedMilliseconds = self.connectionTime.withLock {
            $0.closedMilliseconds + $0.open * now - $0.openStartSum
        }
        let received = Int64(counters.itemsReceived.load(ordering: .relaxed))
        let committed = Int64(counters.itemsCommitted.load(ordering: .relaxed))
        let deliveries = Int64(counters.deliveries.load(ordering: .relaxed))
        let resumes = Int64(counters.resumes.load(ordering: .relaxed))
        self.bridge("connection_minute", connectedMilliseconds / 60_000, into: self.connectionMinute)
        self.bridge("message_received", received, into: self.messageReceived)
        self.bridge("message_sent", deliveries, into: self.messageSent)
        self.bridge("received", received, into: self.itemsReceived)
        self.bridge("committed", committed, into: self.itemsCommitted)
        self.bridge("duplicates", Int64(counters.duplicates.load(ordering: .relaxed)), into: self.itemsDeduplicated)
        self.bridge("resumes", resumes, into: self.resumes)
        self.bridge("memory_reads", Int64(reads.memory.load(ordering: .relaxed)), into: self.readsFromMemory)
        self.bridge("database_reads", Int64(reads.database.load(ordering: .relaxed)), into: self.readsFromDatabase)
        self.bridge("recovered", resumes, into: self.recovered)
        self.bridge("resets", Int64(counters.resets.load(ordering: .relaxed)), into: self.notRecovered)
        self.bridge("recoveries", Int64(counters.recoveries.load(ordering: .relaxed)), into: self.backendRecoveries)
        self.bridge(
            "sequencer_timeouts",
            Int64(counters.sequencerTimeouts.load(ordering: .relaxed)),
            into: self.sequencerTimeouts
        )
    }

    /// Increments `counter` by how much the monotonic `value` grew since the last refresh.
    private func bridge(_ key: String, _ value: Int64, into counter: Counter) {
        let delta = self.bridged.withLock { seen -> Int64 in
            let delta = value - (seen[key] ?? 0)
            if delta > 0 {
                seen[key] = value
            }
            return delta
        }
        if delta > 0 {
            counter.increment(by: delta)
        }
    }

    private func milliseconds() -> Int64 {
        let elapsed = self.clock.now - self.origin
        return elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}

/// One route's backend metrics, made when the route is first used.
private struct BackendRouteMetrics: Sendable {
    let byClass: [String: Counter]
    let latency: Metrics.Timer

    init(route: String, prefix: String, factory: any MetricsFactory) {
        self.byClass = Dictionary(
            uniqueKeysWithValues: ["1xx", "2xx", "3xx", "4xx", "5xx", "error"].map { statusClass in
                (
                    statusClass,
                    Counter(
                        label: prefix + "p8_backend_requests_total",
                        dimensions: [("route", route), ("class", statusClass)],
                        factory: factory
                    )
                )
            }
        )
        self.latency = Metrics.Timer(
            label: prefix + "p8_backend_request_seconds",
            dimensions: [("route", route)],
            factory: factory
        )
    }

    func requests(_ statusClass: String) -> Counter {
        self.byClass[statusClass] ?? self.byClass["error"]!
    }
}
