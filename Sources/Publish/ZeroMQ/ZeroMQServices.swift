import CZeroMQ
package import GRIP
package import Logging
package import ServiceLifecycle

/// The `[handler]` ZeroMQ sockets, bound and ready to run: the PULL and SUB publish inputs, the command
/// socket and the stats socket, each enabled by a non-empty spec.
///
/// Binding happens here, before any service runs, so an address in use stops P-8 at start-up with a clear
/// error; each socket then moves to its own thread when its service runs.
package struct ZeroMQServices: Sendable {
    /// The services to run after the hub (so they stop before it).
    package var services: [any Service]
    /// The bound endpoints.
    package var endpoints: ZMQEndpoints

    /// Binds (or connects) the sockets `configuration` enables and makes their services; routes the hub's
    /// subscription changes to the SUB socket and the stats socket.
    ///
    /// - Throws: ``ZMQError`` naming the socket's spec when one cannot be bound or connected.
    package static func bind(
        configuration: HandlerConfiguration,
        hub: PublishHub,
        logger: Logger
    ) throws
        -> ZeroMQServices
    {
        let subSpecs = configuration.pushInSubSpecs.filter { !$0.isEmpty }
        let specs = [configuration.pushInSpec, configuration.commandSpec, configuration.statsSpec] + subSpecs
        guard specs.contains(where: { !$0.isEmpty }) else {
            return ZeroMQServices(services: [], endpoints: ZMQEndpoints())
        }
        let context = try ZMQContext()
        var endpoints = ZMQEndpoints()

        var pull: ZMQPublishIntake?
        if !configuration.pushInSpec.isEmpty {
            let socket = try ZMQSocket(.pull, context: context)
            try socket.bind(configuration.pushInSpec)
            endpoints.pull = socket.lastEndpoint
            pull = try ZMQPublishIntake(kind: .pull, socket: socket, hub: hub, logger: logger)
        }
        var sub: ZMQPublishIntake?
        if !subSpecs.isEmpty {
            let socket = try ZMQSocket(.sub, context: context)
            if configuration.pushInSubConnect {
                // As Pushpin: TCP keep-alives, so a publisher that went away silently is noticed.
                try socket.setOption(ZMQ_TCP_KEEPALIVE, 1)
                for spec in subSpecs {
                    try socket.connect(spec)
                }
            } else {
                for spec in subSpecs {
                    try socket.bind(spec)
                    endpoints.sub.append(socket.lastEndpoint ?? spec)
                }
            }
            sub = try ZMQPublishIntake(kind: .sub, socket: socket, hub: hub, logger: logger)
        }
        var stats: ZMQStatsPublisher?
        if !configuration.statsSpec.isEmpty {
            let socket = try ZMQSocket(.pub, context: context)
            try socket.bind(configuration.statsSpec)
            endpoints.stats = socket.lastEndpoint
            stats = try ZMQStatsPublisher(
                socket: socket,
                hub: hub,
                format: configuration.statsFormat,
                reportInterval: configuration.statsReportInterval,
                logger: logger
            )
        }
        var command: ZMQCommandServer?
        if !configuration.commandSpec.isEmpty {
            let socket = try ZMQSocket(.router, context: context)
            try socket.bind(configuration.commandSpec)
            endpoints.command = socket.lastEndpoint
            command = try ZMQCommandServer(socket: socket, hub: hub, endpoints: endpoints, logger: logger)
        }
        if sub != nil || stats != nil {
            hub.observeSubscriptions { [sub, stats] channel, _ in
                sub?.subscriptionChanged(channel: channel)
                stats?.subscriptionChanged(channel: channel)
            }
        }
        let all: [(any Service)?] = [pull, sub, command, stats]
        let services = all.compactMap { $0 }
        return ZeroMQServices(services: services, endpoints: endpoints)
    }
}
