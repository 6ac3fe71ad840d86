import Foundation
package import GRIP
package import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
package import Publish
import ServiceLifecycle

/// The HTTP control API listener (`[handler] push_in_http_addr:push_in_http_port`): publish, recover and stats
/// (grip-spec §4.2, ``ControlAPI``). Connections are kept alive between requests when the client asks for it
/// (Pushpin closes after every response). A publish is answered `200` only once ``PublishHub/publish(_:)`` has
/// committed it.
///
/// Limits: request head 10,000 bytes, body `push_in_http_max_body_size` (checked against `Content-Length` before
/// any body byte is read, and while reading), 30 seconds without a byte read (a kept-alive connection that sends
/// no next request is closed then). On graceful shutdown it stops
/// accepting, closes connections that have not sent a request, and gives requests in progress 5 seconds.
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
    private let logger: Logger
    private let onListening: @Sendable (ListenAddress) -> Void
    private let connections = ControlConnections()

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
        let limits: NIOHTTPDecoderLimitConfiguration = {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderListSize = Self.maxHeadBytes
            limits.maxHeaderFieldSize = Self.maxHeadBytes
            return limits
        }()
        let connections = self.connections
        let initializer:
            @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>> =
                {
                    channel in
                    channel.eventLoop.makeCompletedFuture {
                        connections.add(channel)
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                            withPipeliningAssistance: false,
                            withErrorHandling: false,
                            withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
                            withDecoderLimitConfiguration: limits
                        )
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.readTimeout))
                        try channel.pipeline.syncOperations.addHandler(CloseOnIdleHandler())
                        let connection = try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        connections.retain(connection)
                        return connection
                    }
                }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A client may shut down its sending side once the request is out; it still gets its answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        let server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
        if let fd = InheritedListeners.take("publish") {
            server = try await bootstrap.bind(fd, childChannelInitializer: initializer)
        } else {
            server = try await bootstrap.bind(
                host: self.address.host,
                port: self.address.port,
                childChannelInitializer: initializer
            )
        }
        let bound = ListenAddress(
            host: server.channel.localAddress?.ipAddress ?? self.address.host,
            port: server.channel.localAddress?.port ?? self.address.port
        )
        self.logger.info("publish API listening", metadata: ["p8.listen": "\(bound)"])
        self.onListening(bound)
        // Connections accepted but never served (the accept loop ended first, on cancellation) are closed, as NIO
        // requires of every NIOAsyncChannel.
        defer { connections.closeUnserved() }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { accepted in
                    for try await connection in accepted {
                        connections.serving(connection.channel)
                        group.addTask {
                            await self.serve(connection)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            // Stop accepting; requests in flight finish (their publish commits and is answered), idle
            // connections are closed.
            server.channel.close(promise: nil)
            connections.shutDown(grace: Self.shutdownGrace)
        }
        // Accepted when the accept loop ended (a shutdown closes the listener under it): their requests are on the
        // way (a publisher that connected during a restart), so they are served as any connection is during
        // shutdown: one request, then closed. A connection accepted as the listener closed is set up a loop turn
        // later: once the listener is closed, a moment is left for it (closed unserved, it would be reset).
        try? await server.channel.closeFuture.get()
        try? await Task.sleep(for: .milliseconds(50))
        await withDiscardingTaskGroup { group in
            for connection in connections.takeUnserved() {
                group.addTask {
                    await self.serve(connection)
                }
            }
        }
    }

    /// Serves the connection's requests one after another until one of them ends it. Errors end only this
    /// connection.
    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                let exchange = ControlExchange(channel: connection.channel, outbound: outbound)
                while try await self.serveRequest(&parts, exchange: exchange) {}
            }
        } catch {
            self.logger.debug("control API connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// Reads one request and answers it; returns whether the connection stays open for another.
    ///
    /// A publish, recover, stats or root request whose client asked for keep-alive (HTTP/1.1 without
    /// `Connection: close`, HTTP/1.0 with `Connection: keep-alive`) keeps the connection, so that a publisher
    /// sending one item per request pays for one connection, not one per item. Refusals answered before the
    /// body was read, the status stream and everything during shutdown close it, as Pushpin closes after
    /// every response.
    private func serveRequest(
        _ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
        exchange: ControlExchange
    ) async throws -> Bool {
        let channel = exchange.channel
        let head: HTTPRequestHead
        do {
            guard case .head(let first)? = try await parts.next(isolation: #isolation) else {
                return false
            }
            head = first
            self.connections.requestStarted(on: channel)
        } catch let error as HTTPParserError {
            self.logger.debug("control API: unreadable request", metadata: ["error": "\(error)"])
            try await exchange.send(.text(400, Self.text(for: error)), version: .http1_1, keepAlive: false)
            return false
        }
        if let refusal = self.checkFraming(head) {
            try await exchange.sendEarly(refusal, version: head.version, draining: &parts)
            return false
        }
        switch self.api.plan(head) {
        case .respond(let response):
            try await exchange.sendEarly(response, version: head.version, draining: &parts)
            return false
        case .read(.statusEvents, _):
            try await self.streamStatus(to: exchange.outbound, channel: channel, version: head.version)
            return false
        case .read(let endpoint, let json):
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                try await exchange.outbound.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
            }
            guard let body = try await self.readBody(&parts) else {
                try await exchange.sendEarly(Self.bodyTooLarge, version: head.version, draining: &parts)
                return false
            }
            let response = await self.api.respond(to: endpoint, body: body, json: json)
            let keepAlive = head.isKeepAlive && !self.connections.isShuttingDown
            try await exchange.send(response, version: head.version, keepAlive: keepAlive)
            // Idle only once the answer is out: a shutdown closes idle connections at once.
            return self.connections.requestFinished(on: channel) && keepAlive
        }
    }

    /// `GET /status/events`: the status snapshot as an SSE event every second, until the client leaves or the
    /// server shuts down (the connection's read timeout does not apply: the client never sends more).
    private func streamStatus(
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        channel: any Channel,
        version: HTTPVersion
    ) async throws {
        try? await channel.eventLoop.flatSubmit {
            let pipeline = channel.pipeline.syncOperations
            guard let idle = try? pipeline.handler(type: IdleStateHandler.self) else {
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            return pipeline.removeHandler(idle)
        }.get()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Connection", value: "close")
        let responseVersion = version == .http1_0 ? HTTPVersion.http1_0 : .http1_1
        try await outbound.write(.head(HTTPResponseHead(version: responseVersion, status: .ok, headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "retry: 2000\n\n"))))
        while channel.isActive && !Task.isCancelled {
            let snapshot = await self.api.hub.statusSnapshot(now: Date().timeIntervalSince1970)
            var event = Array("data: ".utf8)
            event += snapshot.encoded()
            event += Array("\n\n".utf8)
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: event))))
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Pushpin's framing rules: no chunked bodies, `Content-Length` required on requests that may carry a body,
    /// and a body over the limit refused before it is read.
    private func checkFraming(_ head: HTTPRequestHead) -> ControlResponse? {
        let lengths = head.headers[canonicalForm: "content-length"]
        let bodyless: [HTTPMethod] = [.GET, .HEAD, .DELETE, .OPTIONS]
        if head.headers.contains(name: "transfer-encoding") || (lengths.isEmpty && !bodyless.contains(head.method)) {
            return .text(411, "Request requires Content-Length.")
        }
        guard let text = lengths.first else {
            return nil
        }
        guard lengths.allSatisfy({ $0 == text }), let length = Int(text), length >= 0 else {
            return .text(400, "Bad Content-Length.")
        }
        return length > self.maxBodySize ? Self.bodyTooLarge : nil
    }

    /// The body, or nil as soon as it passes the limit. (``checkFraming(_:)`` already refused a larger
    /// `Content-Length` and chunked bodies; counting here keeps the limit whatever the framing.)
    private func readBody(
        _ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
    ) async throws -> [UInt8]? {
        var body: [UInt8] = []
        while let part = try await parts.next(isolation: #isolation) {
            switch part {
            case .head:
                continue
            case .body(let buffer):
                guard body.count + buffer.readableBytes <= self.maxBodySize else {
                    return nil
                }
                body += buffer.readableBytesView
            case .end:
                return body
            }
        }
        return body
    }

    private static let bodyTooLarge = ControlResponse.text(413, "Request body too large.")

    /// The 400 texts of Pushpin's control server for a request it cannot read.
    private static func text(for error: HTTPParserError) -> String {
        switch error {
        case .headerOverflow:
            return "Request header too large."
        case .invalidContentLength, .unexpectedContentLength:
            return "Bad Content-Length."
        default:
            return "Failed to parse request header."
        }
    }
}

/// Closes a connection when ``IdleStateHandler`` reports that nothing was read for a while.
private final class CloseOnIdleHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension CloseOnIdleHandler: Sendable {}
