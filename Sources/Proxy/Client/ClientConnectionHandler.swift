import Logging
import NIOCore
import NIOHTTP1

/// The last handler of a client connection's pipeline, after NIO's HTTP/1 codec and pipelining handler
/// (which hands over one request at a time). Each request becomes a ``ProxyExchange``; this handler writes
/// what the exchange produces and holds back reads while the backend cannot take more.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let engine: ProxyEngine
    private let pool: BackendConnectionPool
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var exchange: ProxyExchange?
    /// Whether a response to the current request has started (its head is written).
    private var responseStarted = false
    private var isReadPaused = false
    private var readPending = false
    private(set) var remoteAddressText: String?

    init(engine: ProxyEngine, pool: BackendConnectionPool, logger: Logger) {
        self.engine = engine
        self.pool = pool
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
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.responseStarted = false
            if let oversize = self.oversizedHeadResponse(head) {
                self.respond(with: oversize, version: head.version, keepAlive: false)
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
        case .body(let buffer):
            self.exchange?.clientBody(buffer)
        case .end:
            self.exchange?.clientEnd()
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
        // A request that cannot be parsed ends the connection: answer it if no response has started.
        let exchange = self.exchange
        self.exchange = nil
        exchange?.clientClosed()
        if self.responseStarted {
            context.close(promise: nil)
        } else {
            let response: ProxyErrorResponse =
                parserError == .headerOverflow ? .headersTooLarge : .malformedRequest
            self.responseStarted = true
            self.writeResponse(response, version: .http1_1, keepAlive: false)
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.isReadPaused {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ProxyShutdownDeadlineEvent {
            // The grace period is over: end the response in flight as cleanly as its framing allows.
            if let exchange = self.exchange {
                self.exchange = nil
                exchange.clientClosed()
                if self.responseStarted {
                    context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                        context.close(promise: nil)
                    }
                    return
                }
            }
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - Used by the exchange

    func setReadPaused(_ paused: Bool) {
        guard paused != self.isReadPaused else { return }
        self.isReadPaused = paused
        if !paused, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    func writeHead(_ head: HTTPResponseHead) {
        self.responseStarted = true
        self.context?.write(Self.wrapOutboundOut(.head(head)), promise: nil)
    }

    func writeBody(_ buffer: ByteBuffer) {
        self.context?.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    /// Ends the response; the connection stays open for the next request only when `keepAlive`.
    func endResponse(trailers: HTTPHeaders?, keepAlive: Bool) {
        self.exchange = nil
        self.setReadPaused(false)
        guard let context = self.context else { return }
        if keepAlive {
            context.writeAndFlush(Self.wrapOutboundOut(.end(trailers)), promise: nil)
        } else {
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
        self.exchange = nil
        self.writeResponse(error, version: version, keepAlive: keepAlive)
    }

    /// Closes the connection without completing the response (the backend failed mid-response).
    func abortConnection() {
        self.exchange = nil
        self.context?.close(promise: nil)
    }

    // MARK: - Helpers

    private func writeResponse(_ error: ProxyErrorResponse, version: HTTPVersion, keepAlive: Bool) {
        guard let context = self.context else { return }
        self.responseStarted = true
        var body = context.channel.allocator.buffer(capacity: error.body.utf8.count)
        body.writeString(error.body)
        self.respond(head: error.head(version: version, close: !keepAlive), body: body, keepAlive: keepAlive)
    }

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

@available(*, unavailable)
extension ClientConnectionHandler: Sendable {}

/// Sent down every client connection when the shutdown grace period ends.
struct ProxyShutdownDeadlineEvent: Sendable {}
