package import GRIP
package import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The Prometheus endpoint (`prometheus_port`, grip-spec §4.6): any `GET` (or `HEAD`) is answered with the text
/// exposition of every metric, other methods with `405`. One request per connection, as Pushpin's.
package final class MetricsServer: Service {
    private let address: ListenAddress
    private let scrape: @Sendable () async -> [UInt8]
    private let logger: Logger
    private let onListening: @Sendable (ListenAddress) -> Void

    /// - Parameters:
    ///   - scrape: produces the exposition text.
    ///   - onListening: called once bound, with the bound address (port 0 resolved).
    package init(
        address: ListenAddress,
        logger: Logger,
        scrape: @escaping @Sendable () async -> [UInt8],
        onListening: @escaping @Sendable (ListenAddress) -> Void = { _ in }
    ) {
        self.address = address
        self.scrape = scrape
        self.logger = logger
        self.onListening = onListening
    }

    package func run() async throws {
        let scrape = self.scrape
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(30)))
                    try channel.pipeline.syncOperations.addHandler(MetricsRequestHandler(scrape: scrape))
                }
            }
            .bind(self.address, role: "metrics")
            .get()
        let bound = ListenAddress(
            host: channel.localAddress?.ipAddress ?? self.address.host,
            port: channel.localAddress?.port ?? self.address.port
        )
        self.logger.info("metrics listening", metadata: ["p8.listen": "\(bound)"])
        self.onListening(bound)
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

private final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let scrape: @Sendable () async -> [UInt8]
    private var head: HTTPRequestHead?

    init(scrape: @escaping @Sendable () async -> [UInt8]) {
        self.scrape = scrape
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            guard head.method == .GET || head.method == .HEAD else {
                self.respond(context, status: .methodNotAllowed, body: Array("Method not allowed.\n".utf8), head: head)
                return
            }
            let scrape = self.scrape
            let promise = context.eventLoop.makePromise(of: [UInt8].self)
            promise.completeWithTask { await scrape() }
            promise.futureResult.assumeIsolated().whenSuccess { body in
                self.respond(context, status: .ok, body: body, head: head)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(
        _ context: ChannelHandlerContext,
        status: HTTPResponseStatus,
        body: [UInt8],
        head: HTTPRequestHead
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        context.write(
            Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        if head.method != .HEAD {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension MetricsRequestHandler: Sendable {}
