import Foundation
package import GRIP
package import Logging
import Proxy
package import Publish
import ServiceLifecycle
import Store
import Synchronization
import UnixSignals

/// Everything `p8` runs, built from a configuration: the SQLite store and its retention, the publish hub and its
/// HTTP control API, the client-facing proxy and the routes reloader, in one service group that shuts down
/// gracefully on SIGTERM or SIGINT. Tests start exactly this.
package struct P8Server: Sendable {
    /// What the command line overrides in the config file.
    package struct Overrides: Sendable {
        /// `--port`: replaces `[runner] http_port`.
        package var listeners: [ListenAddress]?
        /// `--route`: replaces the routes file.
        package var routeLines: [String]?

        package init(listeners: [ListenAddress]? = nil, routeLines: [String]? = nil) {
            self.listeners = listeners
            self.routeLines = routeLines
        }
    }

    /// The bound addresses, reported once every listener is up.
    package struct Readiness: Sendable, Equatable {
        /// The client-facing proxy's listeners.
        package var http: [ListenAddress]
        /// The TLS client listeners (`https_ports`; not part of ``line``).
        package var https: [ListenAddress] = []
        /// The HTTP control API (publish) listener.
        package var publish: ListenAddress
        /// The ZeroMQ sockets' endpoints (not part of ``line``).
        package var zeroMQ: ZMQEndpoints
        /// The Prometheus endpoint, when `prometheus_port` is set (not part of ``line``).
        package var metrics: ListenAddress?

        package init(
            http: [ListenAddress],
            publish: ListenAddress,
            zeroMQ: ZMQEndpoints = ZMQEndpoints(),
            metrics: ListenAddress? = nil
        ) {
            self.http = http
            self.publish = publish
            self.zeroMQ = zeroMQ
            self.metrics = metrics
        }

        /// The one line `p8` prints on stdout when it is ready, e.g.
        /// `p8 ready http=127.0.0.1:7999 publish=127.0.0.1:5561`, then `https=...` with TLS ports (`http=` stays
        /// first: scripts parse it).
        package var line: String {
            "p8 ready http=" + self.http.map(\.description).joined(separator: ",") + " publish=\(self.publish)"
                + (self.https.isEmpty ? "" : " https=" + self.https.map(\.description).joined(separator: ","))
        }
    }

    package let configuration: P8Configuration
    package let overrides: Overrides
    /// Set when a runner supervises this server: where connections are handed over on a restart.
    package let handover: HandoverSettings?
    private let logger: Logger

    /// The line a server that replaces a running one prints once it waits for that one's connections.
    package static let handoverReadyLine = "p8 handover-ready"

    package init(
        configuration: P8Configuration,
        overrides: Overrides = Overrides(),
        handover: HandoverSettings? = nil,
        logger: Logger
    ) {
        self.configuration = configuration
        self.overrides = overrides
        self.handover = handover
        self.logger = logger
    }

    /// Runs until a graceful shutdown (SIGTERM, SIGINT) completes or the task is cancelled.
    ///
    /// - Parameters:
    ///   - onHandoverListening: a server that replaces a running one: called once it waits for that one's
    ///     connections (after the config and routes were read).
    ///   - onReady: called once, when every listener is bound.
    /// - Throws: ``RunnerError`` when the routes cannot be read; bind errors.
    package func run(
        onHandoverListening: @escaping @Sendable () -> Void = {},
        onReady: @escaping @Sendable (Readiness) -> Void
    ) async throws {
        for warning in self.configuration.warnings {
            self.logger.warning("\(warning)")
        }
        let source: RoutesSource =
            self.overrides.routeLines.map { .lines($0) } ?? .file(self.configuration.proxy.routesFile)
        let (table, warnings) = try source.load()
        for warning in warnings {
            self.logger.warning("\(warning)")
        }
        var takenOver: [TakenOverConnection] = []
        if let handover = self.handover, handover.isSuccessor {
            takenOver = try await HandoverReceiver.receive(
                handover,
                logger: self.logger,
                onListening: onHandoverListening
            )
            self.logger.info(
                "the previous server's connections received",
                metadata: ["p8.connections": "\(takenOver.count)"]
            )
        }
        let store: any ChannelLogStore
        do {
            store = try await Self.openStore(self.configuration.store, logger: self.logger)
        } catch {
            throw RunnerError("cannot open the database: \(error)")
        }
        // Holds recorded by an earlier process are kept, marked orphaned, for inspection. This is the first write:
        // a database that opened but cannot be written (read-only or immutable files) stops start-up here, with
        // the same one line.
        let instance = self.instanceName()
        let orphans: [HoldRecord]
        do {
            orphans = try await store.markOrphans(currentInstance: instance, now: Date())
        } catch {
            throw RunnerError("cannot open the database: \(error)")
        }
        let owedGoneCallbacks = Self.goneCallbacks(owedBy: orphans)
        if !orphans.isEmpty {
            self.logger.info(
                "held requests of an earlier run marked orphaned",
                metadata: ["p8.holds": "\(orphans.count)", "p8.gone.owed": "\(owedGoneCallbacks.count)"]
            )
        }
        self.logger.info(
            "store open",
            metadata: ["p8.store.path": "\(store.location)", "p8.store.epoch": "\(store.epoch)"]
        )
        let hub = PublishHub(
            store: store,
            configuration: self.configuration.handler,
            instance: instance,
            logger: self.logger,
            fanOutPacer: EventLoopFanOutPacer()
        )
        let export = self.configuration.metrics.listen.map { _ in
            MetricsExport(configuration: self.configuration.metrics)
        }
        if let export {
            hub.counters.attach(export.metrics)
        }
        let zeroMQ: ZeroMQServices
        do {
            zeroMQ = try ZeroMQServices.bind(configuration: self.configuration.handler, hub: hub, logger: self.logger)
        } catch {
            throw RunnerError("cannot set up the ZeroMQ sockets: \(error)")
        }
        let routes = RouteTableBox(table)
        let tlsSettings = self.configuration.runner.tls
        var tls: TLSIdentities?
        if !tlsSettings.listeners.isEmpty {
            let identities = TLSIdentities(directory: tlsSettings.certsDirectory, logger: self.logger)
            identities.reload()
            tls = identities
        }
        let settings = ProxySettings(
            listeners: self.overrides.listeners ?? self.configuration.runner.httpListeners,
            tlsListeners: tlsSettings.listeners,
            proxy: self.configuration.proxy,
            maxRequestHeadBytes: self.configuration.runner.clientBufferSize,
            maxConnections: self.configuration.runner.clientMaxConn
        )
        let listening = ListeningReport(zeroMQ: zeroMQ.endpoints, expectsMetrics: export != nil, onReady: onReady)
        let control = ControlServer(hub: hub, configuration: self.configuration.handler, logger: self.logger) {
            bound in
            listening.publishBound(bound)
        }
        let proxy = ProxyServer(
            settings: settings,
            routes: routes,
            hub: hub,
            tls: tls,
            owedGoneCallbacks: owedGoneCallbacks,
            takenOver: takenOver,
            control: control,
            logger: self.logger
        ) {
            http,
            https in
            listening.proxyBound(http, https: https)
        }
        let retention = RetentionService(store: store, logger: self.logger) { summary in
            if summary.deletedItems > 0 {
                export?.metrics.retentionRemoved(summary.deletedItems)
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: retention),
            .init(service: hub),
        ]
        // After the hub, so that they stop (and commit what they received) before it.
        services += zeroMQ.services.map { .init(service: $0) }
        services.append(.init(service: control))
        services.append(.init(service: proxy))
        if let handover = self.handover {
            services.append(.init(service: HandoverService(settings: handover, proxy: proxy, logger: self.logger)))
        }
        if let export, let address = self.configuration.metrics.listen {
            let server = MetricsServer(address: address, logger: self.logger) {
                await export.scrape(hub: hub, store: store)
            } onListening: { bound in
                listening.metricsBound(bound)
            }
            services.append(.init(service: server))
        }
        if case .file(let path) = source {
            services.append(.init(service: RoutesReloadService(path: path, routes: routes, logger: self.logger)))
        }
        if let tls {
            services.append(.init(service: CertificateReloadService(identities: tls, logger: self.logger)))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: self.logger
            )
        )
        try await group.run()
    }
}

/// Collects the bound addresses of the proxy and the control API and reports readiness once both are up.
private final class ListeningReport: Sendable {
    private typealias Bound = (
        http: [ListenAddress]?, https: [ListenAddress], publish: ListenAddress?, metrics: ListenAddress?
    )

    private let zeroMQ: ZMQEndpoints
    private let expectsMetrics: Bool
    private let onReady: @Sendable (P8Server.Readiness) -> Void
    private let bound = Mutex<Bound>((nil, [], nil, nil))

    init(zeroMQ: ZMQEndpoints, expectsMetrics: Bool, onReady: @escaping @Sendable (P8Server.Readiness) -> Void) {
        self.zeroMQ = zeroMQ
        self.expectsMetrics = expectsMetrics
        self.onReady = onReady
    }

    func metricsBound(_ address: ListenAddress) {
        self.report { $0.metrics = address }
    }

    func proxyBound(_ addresses: [ListenAddress], https: [ListenAddress]) {
        self.report { bound in
            bound.http = addresses
            bound.https = https
        }
    }

    func publishBound(_ address: ListenAddress) {
        self.report { $0.publish = address }
    }

    private func report(_ update: (inout Bound) -> Void) {
        let readiness = self.bound.withLock { bound -> P8Server.Readiness? in
            update(&bound)
            guard let http = bound.http, let publish = bound.publish, !self.expectsMetrics || bound.metrics != nil
            else {
                return nil
            }
            var readiness = P8Server.Readiness(
                http: http,
                publish: publish,
                zeroMQ: self.zeroMQ,
                metrics: bound.metrics
            )
            readiness.https = bound.https
            return readiness
        }
        if let readiness {
            self.onReady(readiness)
        }
    }
}
