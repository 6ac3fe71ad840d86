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
        /// The HTTP control API (publish) listener.
        package var publish: ListenAddress
        /// The ZeroMQ sockets' endpoints (not part of ``line``).
        package var zeroMQ: ZMQEndpoints

        package init(http: [ListenAddress], publish: ListenAddress, zeroMQ: ZMQEndpoints = ZMQEndpoints()) {
            self.http = http
            self.publish = publish
            self.zeroMQ = zeroMQ
        }

        /// The one line `p8` prints on stdout when it is ready, e.g.
        /// `p8 ready http=127.0.0.1:7999 publish=127.0.0.1:5561` (`http=` stays first: scripts parse it).
        package var line: String {
            "p8 ready http=" + self.http.map(\.description).joined(separator: ",") + " publish=\(self.publish)"
        }
    }

    package let configuration: P8Configuration
    package let overrides: Overrides
    private let logger: Logger

    package init(configuration: P8Configuration, overrides: Overrides = Overrides(), logger: Logger) {
        self.configuration = configuration
        self.overrides = overrides
        self.logger = logger
    }

    /// Runs until a graceful shutdown (SIGTERM, SIGINT) completes or the task is cancelled.
    ///
    /// - Parameter onReady: called once, when every listener is bound.
    /// - Throws: ``RunnerError`` when the routes cannot be read; bind errors.
    package func run(onReady: @escaping @Sendable (Readiness) -> Void) async throws {
        for warning in self.configuration.warnings {
            self.logger.warning("\(warning)")
        }
        let source: RoutesSource =
            self.overrides.routeLines.map { .lines($0) } ?? .file(self.configuration.proxy.routesFile)
        let (table, warnings) = try source.load()
        for warning in warnings {
            self.logger.warning("\(warning)")
        }
        let store: any ChannelLogStore
        do {
            store = try await Self.openStore(self.configuration.store, logger: self.logger)
        } catch {
            throw RunnerError("cannot open the database: \(error)")
        }
        // Holds recorded by an earlier process are kept, marked orphaned, for inspection.
        let instance = self.instanceName()
        let orphans = try await store.markOrphans(currentInstance: instance, now: Date())
        if !orphans.isEmpty {
            self.logger.info(
                "held requests of an earlier run marked orphaned",
                metadata: ["p8.holds": "\(orphans.count)"]
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
            logger: self.logger
        )
        let zeroMQ: ZeroMQServices
        do {
            zeroMQ = try ZeroMQServices.bind(configuration: self.configuration.handler, hub: hub, logger: self.logger)
        } catch {
            throw RunnerError("cannot set up the ZeroMQ sockets: \(error)")
        }
        let routes = RouteTableBox(table)
        let settings = ProxySettings(
            listeners: self.overrides.listeners ?? self.configuration.runner.httpListeners,
            proxy: self.configuration.proxy,
            maxRequestHeadBytes: self.configuration.runner.clientBufferSize,
            maxConnections: self.configuration.runner.clientMaxConn
        )
        let listening = ListeningReport(zeroMQ: zeroMQ.endpoints, onReady: onReady)
        let proxy = ProxyServer(settings: settings, routes: routes, hub: hub, logger: self.logger) { bound in
            listening.proxyBound(bound)
        }
        let control = ControlServer(hub: hub, configuration: self.configuration.handler, logger: self.logger) {
            bound in
            listening.publishBound(bound)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: RetentionService(store: store, logger: self.logger)),
            .init(service: hub),
        ]
        // After the hub, so that they stop (and commit what they received) before it.
        services += zeroMQ.services.map { .init(service: $0) }
        services.append(.init(service: control))
        services.append(.init(service: proxy))
        if case .file = source {
            services.append(.init(service: RoutesReloadService(source: source, routes: routes, logger: self.logger)))
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
    private let zeroMQ: ZMQEndpoints
    private let onReady: @Sendable (P8Server.Readiness) -> Void
    private let bound = Mutex<(http: [ListenAddress]?, publish: ListenAddress?)>((nil, nil))

    init(zeroMQ: ZMQEndpoints, onReady: @escaping @Sendable (P8Server.Readiness) -> Void) {
        self.zeroMQ = zeroMQ
        self.onReady = onReady
    }

    func proxyBound(_ addresses: [ListenAddress]) {
        self.report { $0.http = addresses }
    }

    func publishBound(_ address: ListenAddress) {
        self.report { $0.publish = address }
    }

    private func report(_ update: (inout (http: [ListenAddress]?, publish: ListenAddress?)) -> Void) {
        let readiness = self.bound.withLock { bound -> P8Server.Readiness? in
            update(&bound)
            guard let http = bound.http, let publish = bound.publish else {
                return nil
            }
            return P8Server.Readiness(http: http, publish: publish, zeroMQ: self.zeroMQ)
        }
        if let readiness {
            self.onReady(readiness)
        }
    }
}
