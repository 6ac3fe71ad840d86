import GRIP
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// One client WebSocket relayed to a backend WebSocket (a route without `over_http`, grip-spec §7.1, §7.6): the
/// upgrade request goes to the backend on a new connection; when it answers `101`, both connections switch to
/// NIO's WebSocket codec and messages, pings, pongs and closes (with their codes and reasons) flow both ways. Each
/// side stops reading while the other cannot take more, and either side going away closes the other. When the
/// backend's `101` enables the GRIP extension, its messages go through ``WebSocketGrip`` (control messages,
/// prefixes, publishing to the client).
///
/// Carries out what ``WebSocketPassthroughStateMachine`` decides; keeps only the wire (the connections, their
/// pipelines, back-pressure, the handshake's timeout). Lives on the client connection's event loop, as does its
/// backend connection.
final class WebSocketPassthrough: UpgradingWebSocket {
    private typealias Side = WebSocketPassthroughStateMachine.Side

    private let handshake: WebSocketClientHandshake
    private var machine: WebSocketPassthroughStateMachine
    private lazy var exchange = self.handshake.backendExchange(mode: .upgrade, delegate: self)
    private var backendResponse: (head: HTTPResponseHead, body: ByteBuffer)?
    private var timeout: Scheduled<Void>?
    private var clientFrames: WebSocketFrameHandler?
    private var backendFrames: WebSocketFrameHandler?
    private var grip: WebSocketGrip?

    init(handshake: WebSocketClientHandshake) {
        self.handshake = handshake
        self.machine = WebSocketPassthroughStateMachine(offersGrip: handshake.offersGrip)
    }

    private var logger: Logger { self.handshake.logger }

    // MARK: - Handshake

    /// Sends the upgrade request to the route's first target that accepts a connection, on a new connection.
    func start() {
        // The client's handshake with its extensions replaced by `grip` on GRIP routes (grip-spec §7.1).
        let request = self.handshake.backendRequest(
            removing: { $0 == "sec-websocket-extensions" },
            addingFirst: [(name: "Upgrade", value: "websocket"), (name: "Connection", value: "Upgrade")]
        )
        self.exchange.start(request)
    }

    /// The client left before the upgrade completed.
    func clientLeftWhileOpening() {
        self.perform(self.machine.clientLeftWhileOpening())
    }

    // MARK: - Actions

    private func perform(_ action: WebSocketPassthroughStateMachine.Action) {
        switch action {
        case .none, .sendHandshake:
            break
        case .closeConnection, .abandon:
            self.dropConnection()
        case .respondBadGateway:
            self.dropConnection()
            self.handshake.respondBadGateway()
        case .relayRefusal(let status, let headers, let body):
            self.dropConnection()
            self.handshake.relayRefusal(status: status, headers: headers, body: body)
        case .upgrade(let headers, let extensions, let gripMessages):
            self.upgrade(headers, extensions: extensions, gripMessages: gripMessages)
        case .forward(let message, let side):
            guard let frames = self.frames(side) else { return }
            switch message {
            case .text(let data): frames.send(.text, data)
            case .binary(let data): frames.send(.binary, data)
            case .ping(let data): frames.send(.ping, data)
            case .pong(let data): frames.send(.pong, data)
            case .close(let code, let reason): frames.sendClose(code: code, reason: String(buffer: reason))
            }
        case .toGrip(let data, let opcode):
            self.grip?.backendMessage(Array(data.readableBytesView), opcode: opcode)
        case .forwardClose(let code, let reason, let side, let now):
            self.grip?.end()
            self.frames(side)?.sendClose(code: code, reason: reason, closeNow: now)
        case .answerClose(let code, let reason):
            self.grip?.end()
            self.clientFrames?.sendClose(code: code, reason: reason, closeNow: true)
        case .closeBackend:
            self.backendFrames?.sendClose(code: 1000, reason: "", closeNow: true)
        case .closeBoth(let code, let reason, let backend):
            self.grip?.end()
            self.clientFrames?.sendClose(code: code, reason: reason)
            if backend {
                self.backendFrames?.sendClose(code: code, reason: reason)
            }
        case .forgetBackend:
            self.backendFrames = nil
        case .ended(let side, let abortOther):
            let other = self.frames(side.other)
            self.clientFrames = nil
            self.backendFrames = nil
            self.grip?.end()
            self.grip?.client = nil
            if abortOther {
                other?.abort()
            } else {
                other?.sendClose(code: 1011, reason: "backend went away", closeNow: true)
            }
        }
    }

    private func dropConnection() {
        self.timeout?.cancel()
        self.exchange.finish(reusingConnection: false)
    }

    /// The backend accepted: upgrade both connections.
    private func upgrade(_ headers: HTTPHeaders, extensions: [String], gripMessages: Bool) {
        guard self.handshake.client != nil, let connection = self.exchange.takeConnection() else {
            self.perform(self.machine.upgradeFailed())
            return
        }
        self.timeout?.cancel()
        let clientFrames = self.handshake.frameHandler(role: .server, answersPings: false)
        let backendFrames = self.handshake.frameHandler(role: .client, answersPings: false)
        clientFrames.delegate = self
        backendFrames.delegate = self
        // Frames are relayed as they come (grip-spec §7.6), except the backend's when they are GRIP messages,
        // whose prefix and control messages need the whole message.
        clientFrames.fragmentRelay = { [unowned self] opcode, data, fin in
            self.relayFragment(from: .client, opcode, data, fin: fin)
        }
        if !gripMessages {
            backendFrames.fragmentRelay = { [unowned self] opcode, data, fin in
                self.relayFragment(from: .backend, opcode, data, fin: fin)
            }
        }
        self.clientFrames = clientFrames
        self.backendFrames = backendFrames
        do {
            try Self.switchToWebSocket(connection, frames: backendFrames, maxFrameBytes: self.handshake.maxFrameBytes)
        } catch {
            self.logger.debug("backend WebSocket upgrade failed", metadata: ["error": "\(error)"])
            connection.close()
            self.clientFrames = nil
            self.backendFrames = nil
            self.perform(self.machine.upgradeFailed())
            return
        }
        self.grip = self.handshake.grip(extensions: extensions, frames: clientFrames, owner: self)
        self.handshake.upgradeClient(headers: headers, frames: clientFrames)
    }

    /// Replaces the HTTP handlers of the backend's connection with NIO's WebSocket frame codec and `frames`.
    private static func switchToWebSocket(
        _ connection: BackendConnection,
        frames: WebSocketFrameHandler,
        maxFrameBytes: Int
    ) throws {
        let pipeline = connection.channel.pipeline.syncOperations
        let encoder = try pipeline.handler(type: HTTPRequestEncoder.self)
        let validator = try pipeline.handler(type: NIOHTTPRequestHeadersValidator.self)
        let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
        connection.delegate = nil
        try pipeline.addHandlers(
            [
                WebSocketFrameEncoder(),
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameBytes)),
                frames,
            ],
            position: .last
        )
        pipeline.removeHandler(connection.handler, promise: nil)
        pipeline.removeHandler(validator, promise: nil)
        pipeline.removeHandler(encoder, promise: nil)
        // Last: the bytes after the 101 go to the frame decoder.
        pipeline.removeHandler(decoder, promise: nil)
    }

    private func frames(_ side: Side) -> WebSocketFrameHandler? {
        side == .client ? self.clientFrames : self.backendFrames
    }

    private func side(of handler: WebSocketFrameHandler) -> Side {
        handler === self.clientFrames ? .client : .backend
    }
}

// MARK: - Backend handshake response

extension WebSocketPassthrough: BackendExchangeDelegate {
    func backendConnected(_ connection: BackendConnection) {
        guard case .sendHandshake = self.machine.connected() else {
            self.exchange.finish(reusingConnection: false)
            return
        }
        connection.write(.end(nil))
        connection.flush()
        self.timeout = self.handshake.eventLoop.assumeIsolated().scheduleTask(
            in: self.handshake.engine.responseTimeout
        ) {
            self.logger.debug("backend timed out answering a WebSocket upgrade")
            self.perform(self.machine.failed())
        }
    }

    func backendUnavailable(_ error: any Error) {
        self.perform(self.machine.failed())
    }

    func backendResponsePart(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            self.backendResponse = (head, ByteBuffer())
        case .body(var buffer):
            guard var response = self.backendResponse else { return }
            self.backendResponse = nil
            if response.body.readableBytes + buffer.readableBytes <= WebSocketClientHandshake.maxRejectionBody {
                response.body.writeBuffer(&buffer)
            }
            self.backendResponse = response
        case .end:
            guard let response = self.backendResponse else {
                self.perform(self.machine.failed())
                return
            }
            self.backendResponse = nil
            self.perform(
                self.machine.handshakeAnswered(
                    status: response.head.status,
                    headers: response.head.headers,
                    body: response.body
                )
            )
        }
    }

    func backendReadComplete() {}

    func backendWritabilityChanged(isWritable: Bool) {}

    func backendFailed(_ error: any Error) {
        self.logger.debug("backend connection failed", metadata: ["error": "\(error)"])
        self.perform(self.machine.failed())
    }

    func backendClosed() {
        self.perform(self.machine.failed())
    }
}

// MARK: - Relaying

extension WebSocketPassthrough: WebSocketFrameHandlerDelegate {
    func webSocket(_ handler: WebSocketFrameHandler, received message: WebSocketMessage) {
        let side = self.side(of: handler)
        self.perform(self.machine.message(message, from: side))
        self.pauseIfBackedUp(handler, side: side)
    }

    func webSocket(_ handler: WebSocketFrameHandler, writabilityChanged isWritable: Bool) {
        self.frames(self.side(of: handler).other)?.setReadPaused(!isWritable)
    }

    /// One data frame from `side`'s peer, passed on to the other side unchanged.
    private func relayFragment(from side: Side, _ opcode: WebSocketOpcode, _ data: ByteBuffer, fin: Bool) {
        guard let target = self.machine.fragmentTarget(from: side), let frames = self.frames(side) else { return }
        self.frames(target)?.sendFrame(opcode, data, fin: fin, flushNow: true)
        self.pauseIfBackedUp(frames, side: side)
    }

    /// Back-pressure: `handler` stops reading while the other side cannot take more.
    private func pauseIfBackedUp(_ handler: WebSocketFrameHandler, side: Side) {
        guard !self.machine.detached, let other = self.frames(side.other), !other.isWritable else { return }
        handler.setReadPaused(true)
    }

    func webSocketClosed(_ handler: WebSocketFrameHandler) {
        self.perform(self.machine.closed(self.side(of: handler)))
    }

    func webSocketShouldQuiesce(_ handler: WebSocketFrameHandler) {
        self.gripClose(code: 1001, reason: "server shutting down")
    }
}

// MARK: - GRIP

extension WebSocketPassthrough: WebSocketGripOwner {
    /// `refresh` concerns WebSocket-over-HTTP only: a passthrough backend is already connected.
    func gripRefresh() {}

    func gripDetach() {
        self.perform(self.machine.detach())
    }

    func gripClose(code: UInt16?, reason: String) {
        self.perform(self.machine.close(code: code, reason: reason))
    }
}

@available(*, unavailable)
extension WebSocketPassthrough: Sendable {}
