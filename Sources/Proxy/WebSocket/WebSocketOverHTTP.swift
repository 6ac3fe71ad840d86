import Foundation
import GRIP
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// One client WebSocket gatewayed to a backend with WebSocket-over-HTTP (grip-spec §7.2-7.4): carries out what
/// ``WebSocketOverHTTPStateMachine`` decides, and keeps only the wire: the backend requests, the reply bodies,
/// the timers, the client's frames. When the reply to `OPEN` enables the GRIP extension, the backend's messages
/// go through ``WebSocketGrip`` (control messages, prefixes, published `ws-message` items).
///
/// Lives on the client connection's event loop, as does every backend connection it uses.
final class WebSocketOverHTTP: UpgradingWebSocket {
    /// Largest reply body accepted from the backend (grip-spec §7.3).
    static let maxResponseBody = 1_000_000

    private var handshake: WebSocketClientHandshake
    private var machine: WebSocketOverHTTPStateMachine
    private var frames: WebSocketFrameHandler?
    /// The GRIP side of the connection, once upgraded.
    private var grip: WebSocketGrip?
    private var keepAlivePoll: Scheduled<Void>?
    private var retryTimer: Scheduled<Void>?

    // The request in flight, on the wire.
    private var targetIndex = 0
    /// The in-flight request's body, kept to send it again on a fresh connection.
    private var inFlightBody: [UInt8] = []
    private var retriedOnFreshConnection = false
    private var connection: BackendConnection?
    private var responseHead: HTTPResponseHead?
    private var responseBody = ByteBuffer()
    private var requestTimeout: Scheduled<Void>?

    init(handshake: WebSocketClientHandshake) {
        let connectionID = UUID().uuidString
        self.handshake = handshake
        self.handshake.logger[metadataKey: "p8.connection-id"] = "\(connectionID)"
        self.machine = WebSocketOverHTTPStateMachine(
            session: WebSocketOverHTTPSession(
                connectionID: connectionID,
                oneEventPerRequest: handshake.route.targets[0].oneEvent
            )
        )
    }

    /// The connection as data, with the channels the client is subscribed to.
    var session: WebSocketOverHTTPSession {
        var session = self.machine.session
        session.subscriptions = self.grip?.subscriptions ?? []
        return session
    }

    /// Sends `OPEN` to the backend; its reply decides between the upgrade and relaying a refusal.
    func start() {
        self.run(self.machine.start())
    }

    /// The client left before the upgrade completed.
    func clientLeftWhileOpening() {
        self.run(self.machine.clientLeftWhileOpening())
    }

    /// Closes the client on the proxy's initiative; the backend, while attached, is told with `CLOSE`.
    func closeClient(code: UInt16?, reason: String) {
        self.run(self.machine.closeClient(code: code, reason: reason))
    }

    // MARK: - Actions

    private func run(_ actions: [WebSocketOverHTTPStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let events, let retry):
                if !retry {
                    self.inFlightBody = WebSocketEvent.encode(events)
                    self.retriedOnFreshConnection = false
                    self.responseHead = nil
                    self.responseBody.clear()
                }
                self.connect(fresh: retry)
            case .retryLater(let attempt):
                let delay = WebSocketOverHTTPStateMachine.retryDelay(
                    attempt: attempt,
                    jitterMilliseconds: Int64.random(in: 0..<1000)
                )
                self.retryTimer = self.handshake.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                    self.run(self.machine.retryTimerFired())
                }
            case .upgrade(let headers, let extensions):
                self.upgrade(headers, extensions: extensions)
            case .abandonRequest:
                self.requestTimeout?.cancel()
                self.closeConnection()
            case .respondBadGateway:
                self.handshake.respondBadGateway()
            case .relayRefusal(let status, let headers, let body):
                self.handshake.relayRefusal(status: status, headers: headers, body: body)
            case .applyBackendEvents:
                while let step = self.machine.nextBackendEvent() {
                    self.run(step)
                }
                self.run(self.machine.backendEventsApplied())
            case .toGrip(let content, let opcode):
                self.grip?.backendMessage(content, opcode: opcode)
            case .sendToClient(let opcode, let content):
                self.frames?.send(opcode, ByteBuffer(bytes: content))
            case .closeClient(let code, let reason, let now):
                self.frames?.sendClose(code: code, reason: reason, closeNow: now)
            case .abortClient:
                self.frames?.abort()
            case .endSession:
                self.grip?.end()
                self.keepAlivePoll?.cancel()
            case .armKeepAlive(let seconds):
                self.keepAlivePoll?.cancel()
                self.keepAlivePoll = self.handshake.eventLoop.assumeIsolated().scheduleTask(
                    in: .seconds(Int64(seconds))
                ) {
                    self.run(self.machine.keepAliveTimerFired())
                }
            case .cancelKeepAlive:
                self.keepAlivePoll?.cancel()
            case .log(let level, let message, let metadata):
                self.handshake.logger.log(
                    level: level,
                    "\(message)",
                    metadata: metadata.mapValues { .string($0) }
                )
            }
        }
    }

    private func upgrade(_ headers: HTTPHeaders, extensions: [String]) {
        guard self.handshake.client != nil,
            let key = self.handshake.requestHead.headers.first(name: "sec-websocket-key")
        else {
            self.machine.upgradeFailed()
            return
        }
        var headers = headers
        headers.add(name: "Sec-WebSocket-Accept", value: WebSocketHandshake.acceptValue(forKey: key))
        let frames = self.handshake.frameHandler(role: .server, answersPings: true)
        frames.delegate = self
        self.frames = frames
        self.handshake.upgradeClient(headers: headers, frames: frames)
        self.grip = self.handshake.grip(
            connectionID: self.machine.session.connectionID,
            extensions: extensions,
            frames: frames,
            owner: self
        )
    }

    // MARK: - Backend requests

    private func connect(fresh: Bool) {
        let target = self.handshake.route.targets[self.targetIndex]
        guard let key = WebSocketClientHandshake.backendKey(target) else {
            self.requestFailed("the built-in test target is not supported")
            return
        }
        let body = self.inFlightBody
        let head = self.backendHead(target: target, contentLength: body.count)
        let completion: (Result<BackendConnection, any Error>) -> Void = { result in
            switch result {
            case .success(let connection):
                self.connection = connection
                connection.delegate = self
                connection.exchangesServed += 1
                connection.write(.head(head))
                connection.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
                connection.write(.end(nil))
                connection.flush()
                self.requestTimeout = self.handshake.eventLoop.assumeIsolated().scheduleTask(
                    in: self.handshake.engine.responseTimeout
                ) {
                    self.requestFailed("backend timed out")
                }
            case .failure(let error):
                if self.machine.session.phase == .opening, self.targetIndex + 1 < self.handshake.route.targets.count {
                    self.targetIndex += 1
                    self.machine.setOneEventPerRequest(self.handshake.route.targets[self.targetIndex].oneEvent)
                    self.connect(fresh: false)
                } else {
                    self.run(self.machine.connectFailed("backend connect failed: \(error)"))
                }
            }
        }
        if fresh {
            self.handshake.pool.connect(key, completion: completion)
        } else {
            self.handshake.pool.acquire(key, completion: completion)
        }
    }

    /// The request head of every backend request (grip-spec §7.2).
    private func backendHead(target: RouteTarget, contentLength: Int) -> HTTPRequestHead {
        let session = self.machine.session
        let removed: Set<String> = [
            "accept", "connection-id", "content-length", "content-type", "sec-websocket-extensions",
        ]
        var head = self.handshake.backendHead(target: target, method: .POST) { name in
            removed.contains(name) || name.hasPrefix("meta-")
        }
        head.headers.add(name: "Accept", value: WebSocketEvent.contentType)
        head.headers.add(name: "Connection-Id", value: session.connectionID)
        head.headers.add(name: "Content-Type", value: WebSocketEvent.contentType)
        for (name, value) in session.meta.sorted(by: { $0.key < $1.key }) {
            head.headers.add(name: "Meta-\(name)", value: value)
        }
        head.headers.replaceOrAdd(name: "Content-Length", value: String(contentLength))
        return head
    }

    private func closeConnection() {
        self.connection?.close()
        self.connection = nil
    }

    private func responseComplete() {
        self.requestTimeout?.cancel()
        if let connection = self.connection {
            self.connection = nil
            if self.responseHead?.isKeepAlive ?? false {
                self.handshake.pool.release(connection)
            } else {
                connection.close()
            }
        }
        self.inFlightBody = []
        guard let head = self.responseHead else { return }
        let body = self.responseBody
        self.responseBody = ByteBuffer()
        self.run(self.machine.replied(status: head.status, headers: head.headers, body: body))
    }

    private func requestFailed(_ reason: String) {
        self.requestTimeout?.cancel()
        if self.responseHead == nil, let connection = self.connection, connection.exchangesServed > 1,
            !self.retriedOnFreshConnection
        {
            // A pooled connection the backend closed while it was idle: send the request again on a new one.
            self.retriedOnFreshConnection = true
            self.closeConnection()
            self.connect(fresh: true)
            return
        }
        self.closeConnection()
        self.run(self.machine.requestFailed(reason))
    }
}

// MARK: - GRIP

extension WebSocketOverHTTP: WebSocketGripOwner {
    func gripDetach() {
        self.run(self.machine.detach())
    }

    func gripClose(code: UInt16?, reason: String) {
        self.closeClient(code: code, reason: reason)
    }

    func gripRefresh() {
        self.run(self.machine.refresh())
    }
}

// MARK: - Client events

extension WebSocketOverHTTP: WebSocketFrameHandlerDelegate {
    func webSocket(_ handler: WebSocketFrameHandler, received message: WebSocketMessage) {
        self.run(self.machine.clientMessage(message))
    }

    func webSocketClosed(_ handler: WebSocketFrameHandler) {
        self.frames = nil
        self.grip?.client = nil
        self.run(self.machine.clientClosed())
    }

    func webSocket(_ handler: WebSocketFrameHandler, writabilityChanged isWritable: Bool) {}

    func webSocketShouldQuiesce(_ handler: WebSocketFrameHandler) {
        self.closeClient(code: 1001, reason: "server shutting down")
    }
}

// MARK: - Backend events

extension WebSocketOverHTTP: BackendConnectionDelegate {
    func backendResponsePart(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            self.responseHead = head
        case .body(var buffer):
            guard self.responseBody.readableBytes + buffer.readableBytes <= Self.maxResponseBody else {
                self.requestFailed("backend reply too large")
                return
            }
            self.responseBody.writeBuffer(&buffer)
        case .end:
            self.responseComplete()
        }
    }

    func backendReadComplete() {}

    func backendWritabilityChanged(isWritable: Bool) {}

    func backendFailed(_ error: any Error) {
        self.requestFailed("backend connection failed: \(error)")
    }

    func backendClosed() {
        self.requestFailed("backend closed the connection")
    }
}

@available(*, unavailable)
extension WebSocketOverHTTP: Sendable {}
