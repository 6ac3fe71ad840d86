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

    var handshake: WebSocketClientHandshake
    var machine: WebSocketOverHTTPStateMachine
    var frames: WebSocketFrameHandler?
    /// The GRIP side of the connection, once upgraded, and the extensions the backend's reply to `OPEN` named.
    var grip: WebSocketGrip?
    var extensions: [String] = []
    var keepAlivePoll: Scheduled<Void>?
    private var retryTimer: Scheduled<Void>?

    // The request in flight, on the wire.
    private lazy var exchange = self.handshake.backendExchange(mode: .pooled, delegate: self)
    /// The in-flight request's body, kept to send it again on a fresh connection.
    private var inFlightBody: [UInt8] = []
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

    /// A connection taken over from an earlier server, in `session`'s phase.
    init(handshake: WebSocketClientHandshake, session: WebSocketOverHTTPSession) {
        self.handshake = handshake
        self.handshake.logger[metadataKey: "p8.connection-id"] = "\(session.connectionID)"
        self.machine = WebSocketOverHTTPStateMachine(session: session)
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

    func run(_ actions: [WebSocketOverHTTPStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let events, let retry):
                self.send(events, retry: retry)
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
                self.exchange.finish(reusingConnection: false)
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
        self.extensions = extensions
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

    /// Whether a request is in flight whose head has not gone to a backend connection yet.
    var hasUnsentRequest: Bool {
        self.machine.session.inFlight != nil && !self.exchange.requestWritten
    }

    /// For a restart: when the request in flight has not reached the backend yet (still waiting for a
    /// connection), abandons it and returns the events it carried and those queued behind it, for the server
    /// that takes the connection over to send; nil when it may have reached the backend.
    func abandonUnsentRequestForHandover() -> [WebSocketEvent]? {
        let session = self.machine.session
        guard let inFlight = session.inFlight, self.hasUnsentRequest else { return nil }
        self.requestTimeout?.cancel()
        self.retryTimer?.cancel()
        self.exchange.finish(reusingConnection: false)
        self.inFlightBody = []
        return inFlight + session.queued
    }

    /// Sends a request through the exchange: `OPEN` to the route's first target that takes it, later requests
    /// to the target that took `OPEN`, without failover (grip-spec §7.2); a `retry` again on a fresh connection.
    private func send(_ events: [WebSocketEvent], retry: Bool) {
        self.responseHead = nil
        self.responseBody.clear()
        guard !retry else {
            self.exchange.retry()
            return
        }
        self.inFlightBody = WebSocketEvent.encode(events)
        let opening = self.machine.session.phase == .opening
        self.exchange.start(self.backendRequest(), fromFirstTarget: opening, failover: opening)
    }

    /// Every backend request (grip-spec §7.2): a POST of the events, with the connection's id and meta.
    private func backendRequest() -> BackendRequest {
        let session = self.machine.session
        let removed: Set<String> = [
            "accept", "connection-id", "content-length", "content-type", "sec-websocket-extensions",
        ]
        var added = [
            (name: "Accept", value: WebSocketEvent.contentType),
            (name: "Connection-Id", value: session.connectionID),
            (name: "Content-Type", value: WebSocketEvent.contentType),
        ]
        for (name, value) in session.meta.sorted(by: { $0.key < $1.key }) {
            added.append((name: "Meta-\(name)", value: value))
        }
        var request = self.handshake.backendRequest(
            method: .POST,
            removing: { removed.contains($0) || $0.hasPrefix("meta-") },
            adding: added
        )
        request.contentLength = self.inFlightBody.count
        return request
    }

    private func responseComplete() {
        self.requestTimeout?.cancel()
        self.exchange.finish(reusingConnection: self.responseHead?.isKeepAlive ?? false)
        self.inFlightBody = []
        guard let head = self.responseHead else { return }
        let body = self.responseBody
        self.responseBody = ByteBuffer()
        self.run(self.machine.replied(status: head.status, headers: head.headers, body: body))
    }

    private func requestFailed(_ reason: String) {
        self.requestTimeout?.cancel()
        // A pooled connection the backend closed while it was idle: the exchange sends the request again on a
        // new one.
        guard !self.exchange.retryOnFreshConnection(replayable: self.responseHead == nil) else { return }
        self.exchange.finish(reusingConnection: false)
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

extension WebSocketOverHTTP: BackendExchangeDelegate {
    func backendConnected(_ connection: BackendConnection) {
        if let target = self.exchange.target {
            self.machine.setOneEventPerRequest(target.oneEvent)
        }
        connection.write(.body(.byteBuffer(ByteBuffer(bytes: self.inFlightBody))))
        connection.write(.end(nil))
        connection.flush()
        self.requestTimeout = self.handshake.eventLoop.assumeIsolated().scheduleTask(
            in: self.handshake.engine.responseTimeout
        ) {
            self.requestFailed("backend timed out")
        }
    }

    func backendUnavailable(_ error: any Error) {
        if case .unsupportedTarget? = error as? BackendExchangeError {
            self.run(self.machine.requestFailed("the built-in test target is not supported"))
        } else {
            self.run(self.machine.connectFailed("backend connect failed: \(error)"))
        }
    }

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
