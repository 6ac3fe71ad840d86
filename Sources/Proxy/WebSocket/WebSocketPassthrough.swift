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
/// Lives on the client connection's event loop, as does its backend connection.
final class WebSocketPassthrough: UpgradingWebSocket {
    private weak var client: ClientConnectionHandler?
    /// Whether the client connected over TLS.
    private let clientIsTLS: Bool
    private let engine: ProxyEngine
    private let pool: BackendConnectionPool
    private let requestHead: HTTPRequestHead
    private let route: Route
    private let originForm: String
    private let trusted: Bool
    private let clientAddress: String?
    private let eventLoop: any EventLoop
    private let logger: Logger

    private enum Phase {
        /// The upgrade request is on its way to the backend.
        case connecting
        /// Both sides upgraded.
        case open
        /// A close handshake is under way, or a side is gone.
        case closing
        case closed
    }

    private var phase = Phase.connecting
    private var targetIndex = 0
    private var connection: BackendConnection?
    private var backendResponse: (head: HTTPResponseHead, body: ByteBuffer)?
    private var timeout: Scheduled<Void>?
    private var clientFrames: WebSocketFrameHandler?
    private var backendFrames: WebSocketFrameHandler?
    private var grip: WebSocketGrip?
    /// A `detach` control message closed the backend side; the client stays, for publishes.
    private var detached = false

    init(
        client: ClientConnectionHandler,
        engine: ProxyEngine,
        pool: BackendConnectionPool,
        requestHead: HTTPRequestHead,
        route: Route,
        originForm: String,
        logger: Logger
    ) {
        self.client = client
        self.clientIsTLS = client.isTLS
        self.engine = engine
        self.pool = pool
        self.requestHead = requestHead
        self.route = route
        self.originForm = originForm
        self.clientAddress = client.remoteAddressText
        self.eventLoop = client.eventLoop
        self.trusted = engine.requestBuilder.isTrusted(requestHead, now: ProxyClock.unixSeconds())
        self.logger = logger
    }

    // MARK: - Handshake

    /// Sends the upgrade request to the route's first target that accepts a connection.
    func start() {
        let target = self.route.targets[self.targetIndex]
        guard case .host(let host, let port) = target.kind else {
            self.fail(nil)
            return
        }
        let key = BackendKey(
            host: host,
            port: port,
            tls: target.ssl,
            verifyCertificate: !target.insecure,
            serverName: ProxyExchange.tlsServerName(connectHost: host, target: target)
        )
        let head = self.backendHead(target: target)
        self.pool.connect(key, forUpgrade: true) { result in
            switch result {
            case .success(let connection):
                guard case .connecting = self.phase else {
                    connection.close()
                    return
                }
                self.connection = connection
                connection.delegate = self
                connection.write(.head(head))
                connection.write(.end(nil))
                connection.flush()
                self.timeout = self.eventLoop.assumeIsolated().scheduleTask(in: self.engine.responseTimeout) {
                    self.logger.debug("backend timed out answering a WebSocket upgrade")
                    self.fail(nil)
                }
            case .failure(let error):
                self.logger.debug("backend connect failed", metadata: ["error": "\(error)"])
                guard case .connecting = self.phase else { return }
                self.targetIndex += 1
                if self.targetIndex < self.route.targets.count {
                    self.start()
                } else {
                    self.fail(nil)
                }
            }
        }
    }

    /// The client's handshake, rewritten as for any request (grip-spec §2.5), with the upgrade headers put back and
    /// the client's extensions replaced by `grip` on GRIP routes (grip-spec §7.1).
    private func backendHead(target: RouteTarget) -> HTTPRequestHead {
        var client = self.requestHead
        client.headers.remove(name: "sec-websocket-extensions")
        var head = self.engine.requestBuilder.backendHead(
            for: client,
            originForm: self.originForm,
            route: self.route,
            target: target,
            clientAddress: self.clientAddress,
            clientIsTLS: self.clientIsTLS,
            trusted: self.trusted,
            now: ProxyClock.unixSeconds()
        )
        head.headers.add(name: "Upgrade", value: "websocket")
        head.headers.add(name: "Connection", value: "Upgrade")
        if !self.trusted && !self.route.noGrip {
            head.headers.add(name: "Sec-WebSocket-Extensions", value: "grip")
        }
        return head
    }

    /// The backend accepted: upgrade both connections.
    private func upgrade(_ head: HTTPResponseHead) {
        guard let client = self.client, let connection = self.connection else {
            self.fail(nil)
            return
        }
        self.timeout?.cancel()
        var headers = head.headers
        headers.remove(name: "sec-websocket-extensions")
        let maxMessage = self.engine.settings.proxy.webSocketMaxMessageBytes
        let clientFrames = WebSocketFrameHandler(
            engine: self.engine,
            role: .server,
            answersPings: false,
            maxMessageBytes: maxMessage
        )
        let backendFrames = WebSocketFrameHandler(
            engine: self.engine,
            role: .client,
            answersPings: false,
            maxMessageBytes: maxMessage
        )
        clientFrames.delegate = self
        backendFrames.delegate = self
        // Frames are relayed as they come (grip-spec §7.6), except the backend's when they are GRIP messages,
        // whose prefix and control messages need the whole message.
        clientFrames.fragmentRelay = { [unowned self, unowned clientFrames] opcode, data, fin in
            self.relayFragment(from: clientFrames, opcode, data, fin: fin)
        }
        let gripEnabled = !self.trusted && !self.route.noGrip
        if WebSocketHandshake.gripMessagePrefix(extensions: head.headers["sec-websocket-extensions"]) == nil
            || !gripEnabled
        {
            backendFrames.fragmentRelay = { [unowned self, unowned backendFrames] opcode, data, fin in
                self.relayFragment(from: backendFrames, opcode, data, fin: fin)
            }
        }
        self.clientFrames = clientFrames
        self.backendFrames = backendFrames
        self.phase = .open
        let maxFrame = self.engine.settings.proxy.webSocketMaxFrameBytes
        do {
            let pipeline = connection.channel.pipeline.syncOperations
            let encoder = try pipeline.handler(type: HTTPRequestEncoder.self)
            let validator = try pipeline.handler(type: NIOHTTPRequestHeadersValidator.self)
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            connection.delegate = nil
            try pipeline.addHandlers(
                [
                    WebSocketFrameEncoder(),
                    ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrame)),
                    backendFrames,
                ],
                position: .last
            )
            pipeline.removeHandler(connection.handler, promise: nil)
            pipeline.removeHandler(validator, promise: nil)
            pipeline.removeHandler(encoder, promise: nil)
            // Last: the bytes after the 101 go to the frame decoder.
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            self.logger.debug("backend WebSocket upgrade failed", metadata: ["error": "\(error)"])
            self.fail(nil)
            return
        }
        self.connection = nil
        let grip = WebSocketGrip(
            extensions: head.headers["sec-websocket-extensions"],
            enabled: gripEnabled,
            route: self.route,
            engine: self.engine,
            clientAddress: self.clientAddress,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
        grip.client = clientFrames
        grip.owner = self
        self.grip = grip
        client.upgradeToWebSocket(
            HTTPResponseHead(version: self.requestHead.version, status: .switchingProtocols, headers: headers),
            frames: clientFrames,
            maxFrameBytes: maxFrame
        )
    }

    /// The handshake failed: the client gets the backend's own refusal (`response`), or a 502.
    private func fail(_ response: (head: HTTPResponseHead, body: ByteBuffer)?) {
        guard case .connecting = self.phase else { return }
        self.phase = .closed
        self.timeout?.cancel()
        self.connection?.close()
        self.connection = nil
        guard let client = self.client else { return }
        guard let response else {
            client.respond(with: .originError, version: self.requestHead.version, keepAlive: false)
            return
        }
        var headers = response.head.headers
        HopByHopHeaders.remove(from: &headers)
        let body = response.body
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        client.respond(
            head: HTTPResponseHead(version: self.requestHead.version, status: response.head.status, headers: headers),
            body: body,
            keepAlive: false
        )
    }

    /// The client left before the upgrade completed.
    func clientLeftWhileOpening() {
        guard case .connecting = self.phase else { return }
        self.phase = .closed
        self.timeout?.cancel()
        self.connection?.close()
        self.connection = nil
    }

    private func other(_ handler: WebSocketFrameHandler) -> WebSocketFrameHandler? {
        handler === self.clientFrames ? self.backendFrames : self.clientFrames
    }
}

// MARK: - Backend handshake response

extension WebSocketPassthrough: BackendConnectionDelegate {
    func backendResponsePart(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            self.backendResponse = (head, ByteBuffer())
        case .body(var buffer):
            guard var response = self.backendResponse else { return }
            self.backendResponse = nil
            if response.body.readableBytes + buffer.readableBytes <= WebSocketOverHTTP.maxRejectionBody {
                response.body.writeBuffer(&buffer)
            }
            self.backendResponse = response
        case .end:
            guard let response = self.backendResponse else {
                self.fail(nil)
                return
            }
            self.backendResponse = nil
            if response.head.status == .switchingProtocols {
                self.upgrade(response.head)
            } else {
                self.fail(response)
            }
        }
    }

    func backendReadComplete() {}

    func backendWritabilityChanged(isWritable: Bool) {}

    func backendFailed(_ error: any Error) {
        self.logger.debug("backend connection failed", metadata: ["error": "\(error)"])
        self.fail(nil)
    }

    func backendClosed() {
        self.fail(nil)
    }
}

// MARK: - Relaying

extension WebSocketPassthrough: WebSocketFrameHandlerDelegate {
    func webSocket(_ handler: WebSocketFrameHandler, received message: WebSocketMessage) {
        if self.detached {
            // Only the client is left: its messages go nowhere; its close is answered.
            if case .close(let code, let reason) = message {
                self.grip?.end()
                handler.sendClose(code: code, reason: String(buffer: reason), closeNow: true)
            }
            return
        }
        guard let other = self.other(handler) else { return }
        let fromBackend = handler === self.backendFrames
        switch message {
        case .text(let data) where fromBackend && self.grip?.isEnabled == true:
            self.grip?.backendMessage(Array(data.readableBytesView), opcode: .text)
        case .binary(let data) where fromBackend && self.grip?.isEnabled == true:
            self.grip?.backendMessage(Array(data.readableBytesView), opcode: .binary)
        case .text(let data):
            other.send(.text, data)
        case .binary(let data):
            other.send(.binary, data)
        case .ping(let data):
            other.send(.ping, data)
        case .pong(let data):
            other.send(.pong, data)
        case .close(let code, let reason):
            self.grip?.end()
            if case .open = self.phase {
                // One side starts the close handshake: pass it on, and its answer back.
                self.phase = .closing
                other.sendClose(code: code, reason: String(buffer: reason))
            } else {
                // The answer to a close handshake: pass it on and end both connections.
                other.sendClose(code: code, reason: String(buffer: reason), closeNow: true)
            }
        }
        if !other.isWritable {
            handler.setReadPaused(true)
        }
    }

    func webSocket(_ handler: WebSocketFrameHandler, writabilityChanged isWritable: Bool) {
        self.other(handler)?.setReadPaused(!isWritable)
    }

    /// One data frame from `handler`'s peer, passed on to the other side unchanged.
    private func relayFragment(
        from handler: WebSocketFrameHandler,
        _ opcode: WebSocketOpcode,
        _ data: ByteBuffer,
        fin: Bool
    ) {
        // Once detached, only the client is left: its messages go nowhere.
        guard !self.detached, let other = self.other(handler) else { return }
        other.sendFrame(opcode, data, fin: fin, flushNow: true)
        if !other.isWritable {
            handler.setReadPaused(true)
        }
    }

    func webSocketClosed(_ handler: WebSocketFrameHandler) {
        let clientLeft = handler === self.clientFrames
        let other = self.other(handler)
        let wasOpen = self.phase == .open
        if !clientLeft && self.detached {
            // The backend side closed after a detach: the client stays.
            self.backendFrames = nil
            return
        }
        self.clientFrames = nil
        self.backendFrames = nil
        self.phase = .closed
        self.grip?.end()
        self.grip?.client = nil
        if clientLeft || !wasOpen {
            // The client vanished (nothing to tell the backend but the end of the connection), or the close
            // handshake is done.
            other?.abort()
        } else {
            other?.sendClose(code: 1011, reason: "backend went away", closeNow: true)
        }
    }

    func webSocketShouldQuiesce(_ handler: WebSocketFrameHandler) {
        self.gripClose(code: 1001, reason: "server shutting down")
    }
}

// MARK: - GRIP

extension WebSocketPassthrough: WebSocketGripOwner {
    /// `refresh` concerns WebSocket-over-HTTP only: a passthrough backend is already connected.
    func gripRefresh() {}

    /// Closes the backend connection; the client stays and still receives publishes (grip-spec §7.4).
    func gripDetach() {
        guard case .open = self.phase, !self.detached else { return }
        self.detached = true
        self.backendFrames?.sendClose(code: 1000, reason: "", closeNow: true)
    }

    /// Closes the client with this code and reason, and the backend with the same.
    func gripClose(code: UInt16?, reason: String) {
        guard case .open = self.phase else { return }
        self.phase = .closing
        self.grip?.end()
        self.clientFrames?.sendClose(code: code, reason: reason)
        if self.detached {
            return
        }
        self.backendFrames?.sendClose(code: code, reason: reason)
    }
}

@available(*, unavailable)
extension WebSocketPassthrough: Sendable {}
