import GRIP
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Publish

/// The last handler of a client connection's pipeline, after NIO's HTTP/1 codec. Each request becomes a
/// ``ProxyExchange``; this handler writes what the exchange produces, holds back reads while the backend
/// cannot take more, and keeps pipelined requests queued until the response before them is complete. The
/// decisions are ``ClientConnectionStateMachine``'s; this handler carries them out on the channel.
///
/// Pipelining is handled here rather than by NIO's `HTTPServerPipelineHandler`, which stops reading while a
/// response is outstanding: that costs two `epoll_ctl` calls per request on a keep-alive connection.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let engine: ProxyEngine
    let pool: BackendConnectionPool
    let logger: Logger
    var context: ChannelHandlerContext?
    var state = ClientConnectionStateMachine()
    /// The request being answered; nil between requests.
    var exchange: ProxyExchange?
    /// A WebSocket handshake waiting for the backend's answer; the connection carries no more HTTP requests.
    var webSocket: (any UpgradingWebSocket)?
    /// Counts the connection's reads (see ``ClientReadCounter``), and the count when the last request ended: a
    /// connection handed over must have no byte read and not yet answered.
    let readCounter: ClientReadCounter?
    var readsAtRequestEnd = 0
    /// A hand-over is under way: no new request is read.
    var readsHeldForHandover = false
    /// The client half-closed (sent FIN): no more requests come; close once those received are answered.
    var inputClosed: Bool { self.state.inputClosed }
    private(set) var remoteAddressText: String?
    /// Auto cross-origin for the current request's response (CORS headers or JSON-P); nil when off.
    var crossOrigin: CrossOriginResponse?

    /// Whether the client connected to a TLS port (`ssl=` route conditions, `X-Forwarded-Proto`).
    let isTLS: Bool

    init(
        engine: ProxyEngine,
        pool: BackendConnectionPool,
        isTLS: Bool = false,
        readCounter: ClientReadCounter? = nil,
        logger: Logger
    ) {
        self.engine = engine
        self.pool = pool
        self.isTLS = isTLS
        self.readCounter = readCounter
        self.logger = logger
    }

    var eventLoop: any EventLoop {
        self.context!.eventLoop
    }

    var isWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.remoteAddressText = context.channel.remoteAddress?.ipAddress
        self.engine.connectionOpened()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = Self.unwrapInboundIn(data)
        if case .end = part {
            self.readsAtRequestEnd = self.readCounter?.reads ?? 0
        }
        self.carryOut(self.state.partRead(part), context: context)
    }

    private func carryOut(_ action: ClientConnectionStateMachine.PartAction, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .startRequest(let head):
            self.crossOrigin = nil
            self.engine.metrics?.requestStarted()
            if let oversize = self.oversizedHeadResponse(head) {
                self.respond(with: oversize, version: head.version, keepAlive: false)
                return
            }
            if isWebSocketUpgradeRequest(head), self.startWebSocket(head) {
                return
            }
            let exchange = ProxyExchange(
                client: self,
                engine: self.engine,
                pool: self.pool,
                requestHead: head,
                logger: self.logger
            )
            self.exchange = exchange
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(
                    Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                    promise: nil
                )
            }
            exchange.start()
        case .forwardBody(let buffer):
            self.exchange?.clientBody(buffer)
        case .forwardEnd:
            self.exchange?.clientEnd()
        }
    }

    /// Hands queued pipelined requests over, one request at a time.
    private func deliverQueuedParts() {
        guard let context = self.context else { return }
        while let action = self.state.nextQueuedPart() {
            self.carryOut(action, context: context)
        }
        if self.state.queueDelivered() {
            context.read()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.exchange?.clientReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.exchange?.clientWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state.channelInactive()
        self.webSocket?.clientLeftWhileOpening()
        self.webSocket = nil
        let exchange = self.exchange
        self.exchange = nil
        exchange?.clientClosed()
        self.engine.connectionClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            self.logger.debug("client connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        let exchange = self.exchange
        self.exchange = nil
        exchange?.clientClosed()
        self.carryOut(self.state.parseError(parserError), context: context)
    }

    func read(context: ChannelHandlerContext) {
        // A hand-over starts no new request, but the body of one being read still comes.
        if (!self.readsHeldForHandover || self.state.state == .answering(bodyArriving: true))
            && self.state.readRequested()
        {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            // Shutting down: idle connections close now, busy ones after their response.
            self.carryOut(self.state.quiesce(), context: context)
        case ChannelEvent.inputClosed:
            self.carryOut(self.state.inputClosed(exchangeIsHeld: self.exchange?.hold != nil), context: context)
        case is ProxyShutdownDeadlineEvent:
            // The grace period is over: end the response in flight as cleanly as its framing allows.
            let exchange = self.exchange
            self.exchange = nil
            exchange?.clientClosed()
            self.carryOut(self.state.shutdownDeadline(), context: context)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func carryOut(_ action: ClientConnectionStateMachine.CloseAction, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .close:
            context.close(promise: nil)
        case .quiesceExchange:
            self.exchange?.quiesce()
        case .respondAndClose(let response):
            self.respond(with: response, version: .http1_1, keepAlive: false)
        case .endResponseAndClose:
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    // MARK: - WebSockets

    /// Starts a WebSocket handshake: WebSocket-over-HTTP when the route's target has `over_http`, else
    /// passthrough.
    ///
    /// - Returns: false when no route takes WebSockets (the request is then proxied, and answered, as any other).
    private func startWebSocket(_ head: HTTPRequestHead) -> Bool {
        let target = RequestTarget(uri: head.uri, hostHeader: head.headers.first(name: "host"))
        let route = self.engine.routes.current.route(
            host: target.host,
            path: target.path,
            isTLS: self.isTLS,
            isWebSocket: true
        )
        guard let route, let first = route.targets.first else { return false }
        let kind: any UpgradingWebSocket.Type = first.overHTTP ? WebSocketOverHTTP.self : WebSocketPassthrough.self
        let webSocket = kind.init(
            handshake: WebSocketClientHandshake(
                client: self,
                engine: self.engine,
                pool: self.pool,
                requestHead: head,
                route: route,
                originForm: target.originForm,
                logger: self.logger
            )
        )
        self.webSocket = webSocket
        self.state.webSocketStarted()
        webSocket.start()
        return true
    }

    /// Completes a WebSocket handshake: sends the `101` response (nil for a WebSocket taken over from an earlier
    /// server, whose client has it), then replaces the HTTP handlers with NIO's WebSocket frame codec and `frames`.
    func upgradeToWebSocket(_ head: HTTPResponseHead?, frames: WebSocketFrameHandler, maxFrameBytes: Int) {
        self.webSocket = nil
        guard let context = self.context else { return }
        self.state.webSocketUpgraded()
        if let head {
            context.writeAndFlush(Self.wrapOutboundOut(.head(head)), promise: nil)
        }
        frames.readCounter = self.readCounter
        frames.startsAtCurrentRead()
        let pipeline = context.pipeline.syncOperations
        do {
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            let validator = try pipeline.handler(type: NIOHTTPResponseHeadersValidator.self)
            try pipeline.addHandlers(
                [
                    WebSocketFrameEncoder(),
                    ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameBytes)),
                    frames,
                ],
                position: .after(self)
            )
            // The frame handler counts the connection's close from now on.
            pipeline.removeHandler(self, promise: nil)
            pipeline.removeHandler(encoder, promise: nil)
            pipeline.removeHandler(validator, promise: nil)
            // NIO's upgrade handler removes itself once it has seen an upgrade request; a WebSocket taken over from
            // an earlier server never sent one here.
            if let upgrader = try? pipeline.handler(type: HTTPServerUpgradeHandler.self) {
                pipeline.removeHandler(upgrader, promise: nil)
            }
            // Last: the bytes the client sent after its upgrade request go to the frame decoder.
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            self.logger.debug("WebSocket upgrade failed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    // MARK: - Used by the exchange

    /// Pauses or resumes reading the client while the backend cannot take more of the request body.
    func setReadPaused(_ paused: Bool) {
        if self.state.backendPaused(paused) {
            self.context?.read()
        }
    }

    func writeHead(_ head: HTTPResponseHead) {
        self.state.responseHeadWritten()
        guard let crossOrigin = self.crossOrigin else {
            self.context?.write(Self.wrapOutboundOut(.head(head)), promise: nil)
            return
        }
        let (decorated, prefix) = crossOrigin.head(head)
        self.context?.write(Self.wrapOutboundOut(.head(decorated)), promise: nil)
        if let prefix {
            self.context?.write(Self.wrapOutboundOut(.body(.byteBuffer(prefix))), promise: nil)
        }
    }

    func writeBody(_ buffer: ByteBuffer) {
        let buffer = self.crossOrigin?.body(buffer) ?? buffer
        self.context?.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    /// Ends the response; the connection stays open for the next request only when `keepAlive`.
    func endResponse(trailers: HTTPHeaders?, keepAlive: Bool) {
        self.exchange = nil
        guard let context = self.context else {
            _ = self.state.responseEnded(keepAlive: false)
            return
        }
        var keepAlive = keepAlive
        if let crossOrigin = self.crossOrigin {
            self.crossOrigin = nil
            if let closing = crossOrigin.end() {
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(closing))), promise: nil)
            }
            keepAlive = keepAlive && !crossOrigin.endsConnection
        }
        switch self.state.responseEnded(keepAlive: keepAlive) {
        case .keepOpen(let deliverQueued, let read):
            context.writeAndFlush(Self.wrapOutboundOut(.end(trailers)), promise: nil)
            if deliverQueued {
                // Not from inside the backend's read callback that ended this response.
                context.eventLoop.assumeIsolated().execute { self.deliverQueuedParts() }
            } else if read {
                context.read()
            }
        case .close:
            context.writeAndFlush(Self.wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Sends a complete response made by the proxy.
    func respond(head: HTTPResponseHead, body: ByteBuffer, keepAlive: Bool) {
        var head = head
        if !keepAlive {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        self.writeHead(head)
        if body.readableBytes > 0 {
            self.writeBody(body)
        }
        self.endResponse(trailers: nil, keepAlive: keepAlive)
    }

    func respond(with error: ProxyErrorResponse, version: HTTPVersion, keepAlive: Bool) {
        guard let context = self.context else { return }
        self.exchange = nil
        var body = context.channel.allocator.buffer(capacity: error.body.utf8.count)
        body.writeString(error.body)
        self.respond(head: error.head(version: version), body: body, keepAlive: keepAlive)
    }

    /// Closes the connection without completing the response (the backend failed mid-response).
    func abortConnection() {
        self.exchange = nil
        self.state.aborted()
        self.context?.close(promise: nil)
    }

    // MARK: - Helpers

    /// NIO's decoder bounds the whole head at `maxRequestHeadBytes` already; this catches a head whose
    /// parsed size exceeds it (the decoder's count excludes the request line).
    private func oversizedHeadResponse(_ head: HTTPRequestHead) -> ProxyErrorResponse? {
        var size = head.uri.utf8.count + 16
        for header in head.headers {
            size += header.name.utf8.count + header.value.utf8.count + 4
            if size > self.engine.settings.maxRequestHeadBytes {
                return .headersTooLarge
            }
        }
        return nil
    }
}

extension ClientConnectionHandler: RemovableChannelHandler {}

@available(*, unavailable)
extension ClientConnectionHandler: Sendable {}

/// Sent down every client connection when the shutdown grace period ends.
struct ProxyShutdownDeadlineEvent: Sendable {}
