import NIOCore
import NIOHTTP1

/// What a backend connection reports to the exchange using it. All calls happen on the connection's event
/// loop, which is also the client connection's loop.
protocol BackendConnectionDelegate: AnyObject {
    func backendResponsePart(_ part: HTTPClientResponsePart)
    func backendReadComplete()
    func backendWritabilityChanged(isWritable: Bool)
    func backendFailed(_ error: any Error)
    func backendClosed()
}

/// Where a backend connection goes, and how: connections are pooled per key.
struct BackendKey: Hashable {
    var host: String
    var port: Int
    /// TLS toward the backend (the `ssl` target option).
    var tls = false
    /// Whether the backend's certificate is verified (false with the `insecure` target option).
    var verifyCertificate = true
    /// The name sent with SNI and checked against the certificate; nil for an IP address.
    var serverName: String?
}

/// One pooled keep-alive HTTP/1.1 connection to a backend, used by one exchange at a time.
final class BackendConnection {
    let key: BackendKey
    let channel: any Channel
    let handler: BackendConnectionHandler
    private let statusLineSniffer: StatusLineSniffer
    /// How many exchanges this connection has served; a reused connection may have been closed by the
    /// backend while idle, so a failure before any response byte is retried once on a fresh connection.
    var exchangesServed = 0

    init(key: BackendKey, channel: any Channel, handler: BackendConnectionHandler, statusLineSniffer: StatusLineSniffer)
    {
        self.key = key
        self.channel = channel
        self.handler = handler
        self.statusLineSniffer = statusLineSniffer
    }

    /// The response status with the reason phrase exactly as the backend sent it.
    func wireStatus(_ status: HTTPResponseStatus) -> HTTPResponseStatus {
        self.statusLineSniffer.restoringReasonPhrase(status)
    }

    var delegate: (any BackendConnectionDelegate)? {
        get { self.handler.delegate }
        set { self.handler.delegate = newValue }
    }

    var isActive: Bool { self.channel.isActive }
    var isWritable: Bool { self.channel.isWritable }

    /// Stops or resumes reading from the backend (back-pressure from a slow client).
    var isReadPaused: Bool {
        get { self.handler.isReadPaused }
        set { self.handler.setReadPaused(newValue) }
    }

    func write(_ part: HTTPClientRequestPart) {
        if case .head = part {
            self.statusLineSniffer.expectResponse()
        }
        self.channel.write(part, promise: nil)
    }

    func flush() {
        self.channel.flush()
    }

    func close() {
        self.handler.delegate = nil
        self.channel.close(promise: nil)
    }
}

/// The channel handler under a ``BackendConnection``: forwards response parts to the delegate and holds back
/// reads while the client cannot take more.
final class BackendConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange using the connection. A strong reference, not a weak one (weak references make every
    /// retain of the exchange slower); every way an exchange ends clears it.
    var delegate: (any BackendConnectionDelegate)?
    /// Called when the connection closes, so the pool can forget it while it is idle.
    var onClose: ((BackendConnectionHandler) -> Void)?
    private(set) var isReadPaused = false
    private var readPending = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func setReadPaused(_ paused: Bool) {
        self.isReadPaused = paused
        if !paused, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.isReadPaused {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = Self.unwrapInboundIn(data)
        guard let delegate = self.delegate else {
            // Bytes from a backend while no request is in flight: the connection cannot be trusted.
            context.close(promise: nil)
            return
        }
        delegate.backendResponsePart(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.delegate?.backendReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.delegate?.backendWritabilityChanged(isWritable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let delegate = self.delegate
        self.delegate = nil
        delegate?.backendFailed(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let delegate = self.delegate
        self.delegate = nil
        delegate?.backendClosed()
        self.onClose?(self)
        self.onClose = nil
    }
}

/// A WebSocket passthrough replaces it with its frame codec after the `101`.
extension BackendConnectionHandler: RemovableChannelHandler {}

@available(*, unavailable)
extension BackendConnectionHandler: Sendable {}

@available(*, unavailable)
extension BackendConnection: Sendable {}
