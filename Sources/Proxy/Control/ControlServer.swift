package import GRIP
package import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
package import Publish
import ServiceLifecycle
import Synchronization

/// The HTTP control API listener (`[handler] push_in_http_addr:push_in_http_port`): publish, recover and stats
/// (grip-spec §4.2, ``ControlAPI``). Connections are kept alive between requests when the client asks for it
/// (Pushpin closes after every response). A publish is answered `200` only once ``PublishHub/publish(_:)`` has
/// committed it.
///
/// Limits: request head 10,000 bytes, body `push_in_http_max_body_size` (checked against `Content-Length` before
/// any body byte is read, and while reading), 30 seconds without a byte read (a kept-alive connection that sends
/// no next request is closed then). Each connection is served by a ``ControlRequestHandler`` on its event loop. On
/// graceful shutdown it stops accepting, closes idle connections, gives new ones ``ControlConnections/firstRequestWait``
/// for their first request and requests in progress 5 seconds, and returns once every connection has closed.
package final class ControlServer: Service {
    /// Pushpin's header block limit for this server.
    static let maxHeadBytes = 10_000
    /// A connection that sends nothing for this long is closed.
    static let readTimeout = TimeAmount.seconds(30)
    /// How long a request in progress may still take once graceful shutdown has begun.
    static let shutdownGrace = TimeAmount.seconds(5)

    private let api: ControlAPI
    private let address: ListenAddress
    private let maxBodySize: Int
    let logger: Logger
    private let onListening: @Sendable (ListenAddress) -> Void
    let connections = ControlConnections()
    /// The listener, once bound (a hand-over closes it).
    let listener = Mutex<(any Channel)?>(nil)
    /// Set once a hand-over has closed the listener.
    let handingOver = Atomic(false)
    private static let limits: NIOHTTPDecoderLimitConfiguration = {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = ControlServer.maxHeadBytes
        limits.maxHeaderFieldSize = ControlServer.maxHeadBytes
        return limits
    }()

    /// - Parameters:
    ///   - configuration: the `[handler]` section: address, port, body limit, publish key.
    ///   - onListening: called once the listener is bound, with the bound address (port 0 resolved).
    package init(
        hub: PublishHub,
        configuration: HandlerConfiguration,
        logger: Logger,
        onListening: @escaping @Sendable (ListenAddress) -> Void
    ) {
        self.api = ControlAPI(hub: hub, publishKey: configuration.publishKey, logger: logger)
        self.address = ListenAddress(host: configuration.pushInHTTPAddr, port: configuration.pushInHTTPPort)
        self.maxBodySize = configuration.pushInHTTPMaxBodySize
        self.logger = logger
        self.onListening = onListening
    }

    package func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A client may shut down its sending side once the request is out; it still gets its answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.initializeConnection(channel)
                }
            }
            .bind(self.address, role: "publish")
            .get()
        self.listener.withLock { $0 = server }
        let bound = ListenAddress(
            host: server.localAddress?.ipAddress ?? self.address.host,
            port: server.localAddress?.port ?? self.address.port
        )
        self.logger.info("publish API listening", metadata: ["p8.listen": "\(bound)"])
        self.onListening(bound)
        let connections = self.connections
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await server.closeFuture.get()
                if self.handingOver.load(ordering: .relaxed) {
                    // A hand-over closed the listener: what it leaves here is served until the shutdown that
                    // follows it.
                    try? await gracefulShutdown()
                }
            } onGracefulShutdown: {
                // Stop accepting (connections still in the backlog wait there, for the next server when the
                // runner holds the socket); requests in flight finish (their publish commits and is answered),
                // idle connections are closed.
                server.close(promise: nil)
                connections.shutDown(grace: Self.shutdownGrace)
            }
        } onCancel: {
            server.close(promise: nil)
            connections.closeAll()
        }
        // The listener is closed (shutdown, cancellation, or an error): serve what is in progress, then end.
        connections.shutDown(grace: Self.shutdownGrace)
        await connections.allClosed()
    }

    /// Sets up a connection's pipeline: a read counter (for hand-overs), NIO's HTTP/1 server codec, the read
    /// timeout, and the handler that serves it.
    func initializeConnection(_ channel: any Channel) throws {
        self.connections.add(channel)
        let pipeline = channel.pipeline.syncOperations
        let counter = ClientReadCounter()
        try pipeline.addHandler(counter)
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: false,
            withErrorHandling: false,
            withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
            withDecoderLimitConfiguration: Self.limits
        )
        try pipeline.addHandler(IdleStateHandler(readTimeout: Self.readTimeout))
        try pipeline.addHandler(CloseOnIdleHandler())
        try pipeline.addHandler(
            ControlRequestHandler(
                api: self.api,
                maxBodySize: self.maxBodySize,
                connections: self.connections,
                readCounter: counter
            )
        )
    }
}
