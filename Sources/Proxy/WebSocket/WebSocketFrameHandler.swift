import NIOCore
import NIOWebSocket
import Publish

/// What a WebSocket connection (the client's, or a passthrough's backend connection) reports to the side that
/// serves it (``WebSocketOverHTTP``, ``WebSocketPassthrough``). All calls happen on the connection's event loop.
protocol WebSocketFrameHandlerDelegate: AnyObject {
    /// A complete message or control frame from the peer (`text`, `binary`, `ping`, `pong`, `close`).
    func webSocket(_ handler: WebSocketFrameHandler, received message: WebSocketMessage)
    /// The connection is gone (after a close handshake or not).
    func webSocketClosed(_ handler: WebSocketFrameHandler)
    /// The server is shutting down.
    func webSocketShouldQuiesce(_ handler: WebSocketFrameHandler)
    /// The connection can take more writes, or cannot (for back-pressure).
    func webSocket(_ handler: WebSocketFrameHandler, writabilityChanged isWritable: Bool)
}

/// A message from the peer, reassembled from its frames.
enum WebSocketMessage: Equatable {
    case text(ByteBuffer)
    case binary(ByteBuffer)
    case ping(ByteBuffer)
    case pong(ByteBuffer)
    /// A close frame, with its code and reason when it has them.
    case close(code: UInt16?, reason: ByteBuffer)
}

/// The last handler of an upgraded connection, after NIO's WebSocket frame codec: reassembles fragmented
/// messages, enforces the message size limit, answers pings (when asked to), runs the close handshake's framing,
/// pauses reading on request (back-pressure) and disconnects a peer that does not read what it is sent.
///
/// On the client's connection it acts as the server (and counts the connection's close); on a passthrough's
/// backend connection it acts as the client, masking what it sends.
final class WebSocketFrameHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Which end of the WebSocket this handler is.
    enum Role {
        /// Facing the client.
        case server
        /// Facing a backend (passthrough): frames are masked.
        case client
    }

    /// Bytes a client may leave unread beyond NIO's buffer before it is disconnected (a slow client never holds
    /// back the others, nor grows the server's memory).
    static let maxBytesWhileUnwritable = 2 * 1024 * 1024
    /// How long to wait for the client's answer to our close frame.
    static let closeTimeout = TimeAmount.seconds(5)

    /// The side serving this client; released when the connection closes (the two reference each other until then).
    var delegate: (any WebSocketFrameHandlerDelegate)?
    /// When set, data frames are handed here as they come (`text`/`binary` first, then `continuation`, with their
    /// `fin`) instead of reassembled into messages: passthrough relays fragments unchanged (grip-spec §7.6). The
    /// message size limit and the fragmentation rules still apply; UTF-8 is checked for unfragmented text only.
    var fragmentRelay: ((_ opcode: WebSocketOpcode, _ data: ByteBuffer, _ fin: Bool) -> Void)?
    /// The size of the fragmented message being relayed, when ``fragmentRelay`` is set.
    private var relayedSize: Int?
    private let engine: ProxyEngine
    private let role: Role
    private let answersPings: Bool
    private let maxMessageBytes: Int
    private var readPaused = false
    private var readPending = false
    private var context: ChannelHandlerContext?
    /// The message being reassembled: its opcode and the bytes so far.
    private var partial: (opcode: WebSocketOpcode, data: ByteBuffer)?
    private var bytesWhileUnwritable = 0
    /// Our close frame is sent: nothing more may be sent.
    private(set) var closeSent = false
    private var closeTimer: Scheduled<Void>?
    /// The connection's read count (see ``ClientReadCounter``) and its value at the last frame: a WebSocket is
    /// handed over only when no read brought part of a frame not yet decoded whole.
    var readCounter: ClientReadCounter?
    private var readsAtLastFrame = 0
    /// A hand-over is under way: nothing more is read.
    private var readsHeldForHandover = false

    init(engine: ProxyEngine, role: Role, answersPings: Bool, maxMessageBytes: Int) {
        self.engine = engine
        self.role = role
        self.answersPings = answersPings
        self.maxMessageBytes = maxMessageBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if self.role == .server {
            self.engine.metrics?.webSocketChanged(opened: true)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        self.readsAtLastFrame = self.readCounter?.reads ?? 0
        if let relay = self.fragmentRelay,
            frame.opcode == .text || frame.opcode == .binary || frame.opcode == .continuation
        {
            self.relay(frame, to: relay)
            return
        }
        switch frame.opcode {
        case .text, .binary:
            guard self.partial == nil else {
                self.protocolError("new message inside a fragmented one")
                return
            }
            if frame.fin {
                self.messageComplete(opcode: frame.opcode, data: frame.unmaskedData)
            } else {
                self.partial = (frame.opcode, frame.unmaskedData)
                self.checkSize(self.partial?.data.readableBytes ?? 0)
            }
        case .continuation:
            guard var partial = self.partial else {
                self.protocolError("continuation without a message")
                return
            }
            self.partial = nil
            var data = frame.unmaskedData
            partial.data.writeBuffer(&data)
            guard self.checkSize(partial.data.readableBytes) else { return }
            if frame.fin {
                self.messageComplete(opcode: partial.opcode, data: partial.data)
            } else {
                self.partial = partial
            }
        case .ping:
            let payload = frame.unmaskedData
            if self.answersPings && !self.closeSent {
                self.write(self.frame(.pong, payload, fin: true), flush: true)
            }
            self.delegate?.webSocket(self, received: .ping(payload))
        case .pong:
            self.delegate?.webSocket(self, received: .pong(frame.unmaskedData))
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self)
            let answered = self.closeSent
            self.delegate?.webSocket(self, received: .close(code: code, reason: payload))
            if answered {
                // The peer answered our close: the handshake is complete.
                context.close(promise: nil)
            }
        default:
            self.protocolError("unknown opcode")
        }
    }

    /// Hands one data frame to ``fragmentRelay``, keeping the fragmentation rules and the message size limit.
    private func relay(_ frame: WebSocketFrame, to relay: (WebSocketOpcode, ByteBuffer, Bool) -> Void) {
        let data = frame.unmaskedData
        if frame.opcode == .continuation {
            guard let size = self.relayedSize else {
                self.protocolError("continuation without a message")
                return
            }
            self.relayedSize = size + data.readableBytes
        } else {
            guard self.relayedSize == nil else {
                self.relayedSize = nil
                self.protocolError("new message inside a fragmented one")
                return
            }
            if frame.fin {
                // A whole message: checked as the reassembling path checks it.
                self.messageComplete(opcode: frame.opcode, data: data)
                return
            }
            self.relayedSize = data.readableBytes
        }
        guard let size = self.relayedSize, size <= self.maxMessageBytes else {
            self.relayedSize = nil
            self.sendClose(code: 1009, reason: "message too big")
            return
        }
        if frame.fin {
            self.relayedSize = nil
        }
        relay(frame.opcode, data, frame.fin)
    }

    @discardableResult
    private func checkSize(_ size: Int) -> Bool {
        guard size > self.maxMessageBytes else { return true }
        self.partial = nil
        self.sendClose(code: 1009, reason: "message too big")
        return false
    }

    private func messageComplete(opcode: WebSocketOpcode, data: ByteBuffer) {
        guard self.checkSize(data.readableBytes) else { return }
        if opcode == .text {
            guard String(validating: data.readableBytesView, as: UTF8.self) != nil else {
                self.sendClose(code: 1007, reason: "invalid UTF-8 in text message")
                return
            }
            self.delegate?.webSocket(self, received: .text(data))
        } else {
            self.delegate?.webSocket(self, received: .binary(data))
        }
    }

    private func protocolError(_ reason: String) {
        self.partial = nil
        self.sendClose(code: 1002, reason: reason)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeTimer?.cancel()
        if self.role == .server {
            self.engine.connectionClosed()
            self.engine.metrics?.webSocketChanged(opened: false)
        }
        let delegate = self.delegate
        self.delegate = nil
        self.fragmentRelay = nil
        delegate?.webSocketClosed(self)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.bytesWhileUnwritable = 0
        }
        self.delegate?.webSocket(self, writabilityChanged: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            self.delegate?.webSocketShouldQuiesce(self)
        case is ProxyShutdownDeadlineEvent:
            context.close(promise: nil)
        case ChannelEvent.inputClosed:
            // The client sent FIN without a close frame: it has gone (the proxy port allows half-closes for HTTP).
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength {
            self.sendClose(code: 1009, reason: "frame too big")
        } else if error is NIOWebSocketError {
            self.sendClose(code: 1002, reason: "protocol error")
        } else {
            context.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.readPaused || self.readsHeldForHandover {
            self.readPending = true
        } else {
            context.read()
        }
    }

    /// Stops or resumes reading from the peer (back-pressure from the other side of a passthrough).
    func setReadPaused(_ paused: Bool) {
        self.readPaused = paused
        if !paused, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    // MARK: - Hand-over

    /// Nothing more is read until ``releaseReadsAfterHandover()``.
    func holdReadsForHandover() {
        self.readsHeldForHandover = true
    }

    func releaseReadsAfterHandover() {
        guard self.readsHeldForHandover else { return }
        self.readsHeldForHandover = false
        if !self.readPaused, self.readPending, let context = self.context {
            self.readPending = false
            context.read()
        }
    }

    /// Whether the WebSocket can be handed over now: no message half received, no close under way, and every
    /// byte read decoded into frames.
    var isHandoverReady: Bool {
        self.context != nil && self.partial == nil && !self.closeSent && self.fragmentRelay == nil
            && (self.readCounter?.reads ?? 0) == self.readsAtLastFrame
    }

    /// Marks where the frames of a WebSocket taken over from an earlier server start.
    func startsAtCurrentRead() {
        self.readsAtLastFrame = self.readCounter?.reads ?? 0
    }

    /// The connection was handed over: closing this side tells nobody (the socket lives on in the new server).
    func detachForHandover() {
        self.delegate = nil
        self.closeTimer?.cancel()
        self.context?.close(promise: nil)
    }

    /// Whether the connection takes more writes now.
    var isWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    // MARK: - Outbound

    /// A frame to send: masked when this handler is the client end.
    private func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer, fin: Bool) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, maskKey: self.role == .client ? .random() : nil, data: data)
    }

    /// Sends a message (or a ping or pong) to the client.
    func send(_ opcode: WebSocketOpcode, _ data: ByteBuffer) {
        guard !self.closeSent else { return }
        self.write(self.frame(opcode, data, fin: true), flush: true)
    }

    /// Sends one frame of a message split over several (flushed with the last, or at once with `flushNow`).
    func sendFrame(_ opcode: WebSocketOpcode, _ data: ByteBuffer, fin: Bool, flushNow: Bool = false) {
        guard !self.closeSent else { return }
        self.write(self.frame(opcode, data, fin: fin), flush: fin || flushNow)
    }

    /// Starts the close handshake (or answers the client's close): sends a close frame, then closes the
    /// connection when the client answers, or after ``closeTimeout``.
    func sendClose(code: UInt16?, reason: String, closeNow: Bool = false) {
        guard let context = self.context, !self.closeSent else {
            self.context?.close(promise: nil)
            return
        }
        self.closeSent = true
        var payload = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        if let code {
            payload.writeInteger(code)
            payload.writeString(reason)
        }
        let done = context.writeAndFlush(
            Self.wrapOutboundOut(self.frame(.connectionClose, payload, fin: true))
        )
        if closeNow {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        self.closeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeTimeout) {
            context.close(promise: nil)
        }
    }

    /// Drops the connection without a close handshake.
    func abort() {
        self.context?.close(promise: nil)
    }

    private func write(_ frame: WebSocketFrame, flush: Bool) {
        guard let context = self.context else { return }
        let size = frame.length
        context.write(Self.wrapOutboundOut(frame), promise: nil)
        if flush {
            context.flush()
        }
        guard !context.channel.isWritable else { return }
        self.bytesWhileUnwritable += size
        if self.bytesWhileUnwritable > Self.maxBytesWhileUnwritable {
            // Too slow: drop it (the backend hears DISCONNECT).
            self.engine.metrics?.slowClientDisconnected(transport: "ws")
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension WebSocketFrameHandler: Sendable {}
