import Foundation
import GRIP
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// One client WebSocket gatewayed to a backend with WebSocket-over-HTTP (grip-spec §7.2-7.4): the client's
/// messages become POSTs of `application/websocket-events`, one in flight at a time (messages arriving meanwhile
/// are batched into the next), and the events of each reply are applied to the client. When the reply to `OPEN`
/// enables the GRIP extension, the backend's messages go through ``WebSocketGrip`` (control messages, prefixes,
/// published `ws-message` items).
///
/// Lives on the client connection's event loop, as does every backend connection it uses.
final class WebSocketOverHTTP: UpgradingWebSocket {
    /// Most message content sent in one backend request (grip-spec §7.2).
    static let maxRequestContent = 200_000
    /// Largest reply body accepted from the backend (grip-spec §7.3).
    static let maxResponseBody = 1_000_000
    /// Largest body of a refused handshake relayed to the client (grip-spec §7.1).
    static let maxRejectionBody = 100_000
    /// Shortest `Keep-Alive-Interval` honoured (grip-spec §7.2).
    static let minKeepAliveInterval = 20
    /// Attempts made again at a request that could not connect, 1, 2, 4, 8 and 16 s apart (grip-spec §7.2).
    static let maxConnectRetries = 5

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
    private var logger: Logger
    /// The `Connection-Id` header, constant for the connection.
    private let connectionID = UUID().uuidString

    private enum Phase {
        /// The `OPEN` request is in flight; the client is still an HTTP request.
        case opening
        /// Upgraded; messages flow both ways.
        case open
        /// The backend side is closed (`detach`): client messages are discarded, publishes still delivered.
        case detached
        /// The client connection is closing or gone; at most a last `CLOSE`/`DISCONNECT` goes to the backend.
        case closing
    }

    private var phase = Phase.opening
    private var frames: WebSocketFrameHandler?
    private var targetIndex = 0
    /// The GRIP side of the connection, once upgraded.
    private var grip: WebSocketGrip?
    /// `Set-Meta-*` values, echoed as `Meta-*` on every request.
    private var meta: [String: String] = [:]
    /// Events waiting for the next request.
    private var queue: [WebSocketEvent] = []
    private var inFlight = false
    /// The in-flight request's body, kept to send it again when a pooled connection turns out to be closed.
    private var inFlightBody: [UInt8] = []
    /// The in-flight request's events, for what `Content-Bytes-Accepted` leaves to send again.
    private var inFlightEvents: [WebSocketEvent] = []
    private var retriedOnFreshConnection = false
    /// Attempts made again at a request that could not connect, and the timer of the next.
    private var connectRetries = 0
    private var retryTimer: Scheduled<Void>?
    /// The client's close is waiting for the backend's answer.
    private var clientCloseAwaitingBackend: (code: UInt16?, reason: ByteBuffer)?
    private var connection: BackendConnection?
    private var responseHead: HTTPResponseHead?
    private var responseBody = ByteBuffer()
    private var requestTimeout: Scheduled<Void>?
    private var keepAliveInterval: Int?
    private var keepAlivePoll: Scheduled<Void>?

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
        var logger = logger
        logger[metadataKey: "p8.connection-id"] = "\(self.connectionID)"
        self.logger = logger
    }

    // MARK: - Opening

    /// Sends `OPEN` to the backend; its reply decides between the upgrade and relaying a refusal.
    func start() {
        self.queue = [.open]
        self.sendNext()
    }

    private func opened(_ head: HTTPResponseHead, events: [WebSocketEvent]) {
        guard let client = self.client, let key = self.requestHead.headers.first(name: "sec-websocket-key") else {
            self.closeBackendSide()
            return
        }
        guard events.first == .open || (events.isEmpty && head.headers.first(name: "keep-alive-interval") != nil)
        else {
            self.logger.debug("backend did not accept the WebSocket with OPEN")
            self.phase = .closing
            client.respond(with: .originError, version: self.requestHead.version, keepAlive: false)
            return
        }
        var headers = HTTPHeaders()
        let excluded: Set<String> = [
            "content-type", "content-length", "keep-alive-interval", "sec-websocket-extensions", "connection",
            "upgrade", "transfer-encoding", "keep-alive", "sec-websocket-accept",
        ]
        for header in head.headers {
            let name = header.name.lowercased()
            if !excluded.contains(name) && !name.hasPrefix("set-meta-") {
                headers.add(name: header.name, value: header.value)
            }
        }
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: WebSocketHandshake.acceptValue(forKey: key))
        let frames = WebSocketFrameHandler(
            engine: self.engine,
            role: .server,
            answersPings: true,
            maxMessageBytes: self.engine.settings.proxy.webSocketMaxMessageBytes
        )
        frames.delegate = self
        self.frames = frames
        self.phase = .open
        client.upgradeToWebSocket(
            HTTPResponseHead(version: self.requestHead.version, status: .switchingProtocols, headers: headers),
            frames: frames,
            maxFrameBytes: self.engine.settings.proxy.webSocketMaxFrameBytes
        )
        let grip = WebSocketGrip(
            connectionID: self.connectionID,
            extensions: head.headers["sec-websocket-extensions"],
            enabled: !self.trusted && !self.route.noGrip,
            route: self.route,
            engine: self.engine,
            clientAddress: self.clientAddress,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
        grip.client = frames
        grip.owner = self
        self.grip = grip
        self.apply(events.dropFirst())
    }

    /// The handshake failed before the upgrade: the client gets the backend's refusal, or a 502.
    private func openFailed(_ head: HTTPResponseHead?, body: ByteBuffer) {
        self.phase = .closing
        guard let client = self.client else { return }
        guard let head else {
            client.respond(with: .originError, version: self.requestHead.version, keepAlive: false)
            return
        }
        var headers = head.headers
        HopByHopHeaders.remove(from: &headers)
        let body = body.getSlice(at: body.readerIndex, length: min(body.readableBytes, Self.maxRejectionBody)) ?? body
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        client.respond(
            head: HTTPResponseHead(version: self.requestHead.version, status: head.status, headers: headers),
            body: body,
            keepAlive: false
        )
    }

    // MARK: - Backend requests

    /// Sends the queued events in one request, unless one is in flight. With `poll`, sends even when nothing is
    /// queued (a keep-alive poll, grip-spec §7.2).
    private func sendNext(poll: Bool = false) {
        guard !self.inFlight, !self.queue.isEmpty || poll else { return }
        if case .detached = self.phase { return }
        var events: [WebSocketEvent] = []
        var size = 0
        while let event = self.queue.first {
            let eventSize = event.contentSize
            if !events.isEmpty
                && (self.route.targets[self.targetIndex].oneEvent || size + eventSize > Self.maxRequestContent)
            {
                break
            }
            events.append(event)
            size += eventSize
            self.queue.removeFirst()
        }
        self.inFlight = true
        self.keepAlivePoll?.cancel()
        self.responseHead = nil
        self.responseBody.clear()
        self.inFlightBody = WebSocketEvent.encode(events)
        self.inFlightEvents = events
        self.retriedOnFreshConnection = false
        self.connectRetries = 0
        self.connect(fresh: false)
    }

    private func connect(fresh: Bool) {
        let body = self.inFlightBody
        let target = self.route.targets[self.targetIndex]
        guard case .host(let host, let port) = target.kind else {
            self.requestFailed("the built-in test target is not supported")
            return
        }
        let key = BackendKey(
            host: host,
            port: port,
            tls: target.ssl,
            verifyCertificate: !target.insecure,
            serverName: ProxyExchange.tlsServerName(connectHost: host, target: target)
        )
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
                self.requestTimeout = self.eventLoop.assumeIsolated().scheduleTask(in: self.engine.responseTimeout) {
                    self.requestFailed("backend timed out")
                }
            case .failure(let error):
                if case .opening = self.phase, self.targetIndex + 1 < self.route.targets.count {
                    self.targetIndex += 1
                    self.connect(fresh: false)
                } else if self.phase != .opening, self.connectRetries < Self.maxConnectRetries {
                    // The request never reached the backend: try again later (grip-spec §7.2), not for OPEN.
                    self.connectRetries += 1
                    let delay = (1 << Int64(self.connectRetries - 1)) * 1000 + Int64.random(in: 0..<1000)
                    self.retryTimer = self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) {
                        self.connect(fresh: true)
                    }
                } else {
                    self.requestFailed("backend connect failed: \(error)")
                }
            }
        }
        if fresh {
            self.pool.connect(key, completion: completion)
        } else {
            self.pool.acquire(key, completion: completion)
        }
    }

    /// The request head of every backend request (grip-spec §7.2).
    private func backendHead(target: RouteTarget, contentLength: Int) -> HTTPRequestHead {
        var client = self.requestHead
        client.method = .POST
        for name in ["accept", "connection-id", "content-length", "content-type", "sec-websocket-extensions"] {
            client.headers.remove(name: name)
        }
        for name in Set(client.headers.map(\.name)) where name.lowercased().hasPrefix("meta-") {
            client.headers.remove(name: name)
        }
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
        if !self.trusted && !self.route.noGrip {
            head.headers.add(name: "Sec-WebSocket-Extensions", value: "grip")
        }
        head.headers.add(name: "Accept", value: WebSocketEvent.contentType)
        head.headers.add(name: "Connection-Id", value: self.connectionID)
        head.headers.add(name: "Content-Type", value: WebSocketEvent.contentType)
        for (name, value) in self.meta.sorted(by: { $0.key < $1.key }) {
            head.headers.add(name: "Meta-\(name)", value: value)
        }
        head.headers.replaceOrAdd(name: "Content-Length", value: String(contentLength))
        return head
    }

    private func responseComplete(keepAlive: Bool) {
        self.requestTimeout?.cancel()
        if let connection = self.connection {
            self.connection = nil
            if keepAlive {
                self.pool.release(connection)
            } else {
                connection.close()
            }
        }
        self.inFlight = false
        self.inFlightBody = []
        guard let head = self.responseHead else { return }
        let body = self.responseBody
        self.responseBody = ByteBuffer()
        let contentType = head.headers.first(name: "content-type")
        let events: [WebSocketEvent]?
        if head.status == .ok && contentType == WebSocketEvent.contentType {
            events = try? WebSocketEvent.decode(Array(body.readableBytesView))
        } else {
            events = nil
        }
        if case .opening = self.phase {
            guard let events else {
                if head.status == .ok && contentType == WebSocketEvent.contentType {
                    self.logger.debug("backend answered OPEN with malformed events")
                    self.openFailed(nil, body: ByteBuffer())
                } else {
                    self.openFailed(head, body: body)
                }
                return
            }
            self.readReplyHeaders(head)
            self.opened(head, events: events)
        } else if case .closing = self.phase {
            guard self.queue.isEmpty else {
                // The CLOSE or DISCONNECT is still to be sent: the client no longer takes messages.
                self.sendNext()
                return
            }
            // The last request (CLOSE or DISCONNECT): its answer only completes a close handshake.
            if let code = self.clientCloseAwaitingBackend {
                self.clientCloseAwaitingBackend = nil
                let reply = events?.first { if case .close = $0 { true } else { false } }
                if case .close(let backendCode, let reason) = reply {
                    self.frames?.sendClose(
                        code: backendCode,
                        reason: String(decoding: reason, as: UTF8.self),
                        closeNow: true
                    )
                } else {
                    self.frames?.sendClose(code: code.code, reason: String(buffer: code.reason), closeNow: true)
                }
            }
            return
        } else {
            guard let events else {
                self.logger.info(
                    "backend answered a WebSocket-over-HTTP request with an error",
                    metadata: ["p8.status": "\(head.status.code)"]
                )
                self.closeClient(code: 1011, reason: "backend error")
                return
            }
            self.readReplyHeaders(head)
            guard self.requeueUnaccepted(head) else { return }
            self.apply(events[...])
        }
        self.armKeepAlivePoll()
        self.sendNext()
    }

    /// `Content-Bytes-Accepted` (Pushpin 1.41, grip-spec §7.3): what the backend did not take goes first in the
    /// next request. Returns false (the client is closed) when the value does not fit what was sent.
    private func requeueUnaccepted(_ head: HTTPResponseHead) -> Bool {
        let sent = self.inFlightEvents
        self.inFlightEvents = []
        guard let value = head.headers.first(name: "content-bytes-accepted"),
            let accepted = Int(value.trimmingCharacters(in: .whitespaces)), accepted >= 0
        else {
            return true
        }
        do {
            self.queue.insert(contentsOf: try WebSocketEvent.unaccepted(sent, accepted: accepted), at: 0)
            return true
        } catch {
            self.logger.info("backend answered with a bad Content-Bytes-Accepted", metadata: ["error": "\(error)"])
            self.closeClient(code: 1011, reason: "backend error")
            return false
        }
    }

    /// `Set-Meta-*` and `Keep-Alive-Interval` (grip-spec §7.3).
    private func readReplyHeaders(_ head: HTTPResponseHead) {
        for header in head.headers where header.name.lowercased().hasPrefix("set-meta-") {
            let name = String(header.name.dropFirst("set-meta-".count))
            self.meta[name] = header.value.isEmpty ? nil : header.value
        }
        if let value = head.headers.first(name: "keep-alive-interval") {
            if let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds > 0 {
                self.keepAliveInterval = max(seconds, Self.minKeepAliveInterval)
            } else {
                self.keepAliveInterval = nil
            }
        }
    }

    private func armKeepAlivePoll() {
        self.keepAlivePoll?.cancel()
        guard let interval = self.keepAliveInterval, case .open = self.phase else { return }
        self.keepAlivePoll = self.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(interval))) {
            self.sendNext(poll: true)
        }
    }

    private func requestFailed(_ reason: String) {
        self.requestTimeout?.cancel()
        if self.responseHead == nil, let connection = self.connection, connection.exchangesServed > 1,
            !self.retriedOnFreshConnection
        {
            // A pooled connection the backend closed while it was idle: send the request again on a new one.
            self.retriedOnFreshConnection = true
            self.connection = nil
            connection.close()
            self.connect(fresh: true)
            return
        }
        if let connection = self.connection {
            self.connection = nil
            connection.close()
        }
        guard self.inFlight else { return }
        self.inFlight = false
        self.logger.debug("WebSocket-over-HTTP request failed", metadata: ["reason": "\(reason)"])
        switch self.phase {
        case .opening:
            self.openFailed(nil, body: ByteBuffer())
        case .open:
            self.closeClient(code: 1011, reason: "backend unavailable")
        case .closing:
            if let close = self.clientCloseAwaitingBackend {
                self.clientCloseAwaitingBackend = nil
                self.frames?.sendClose(code: close.code, reason: String(buffer: close.reason), closeNow: true)
            }
        case .detached:
            break
        }
    }

    // MARK: - Applying the backend's events

    private func apply(_ events: ArraySlice<WebSocketEvent>) {
        for event in events {
            guard let frames = self.frames else { return }
            switch event {
            case .text(let content):
                self.grip?.backendMessage(content, opcode: .text)
            case .binary(let content):
                self.grip?.backendMessage(content, opcode: .binary)
            case .ping(let content):
                frames.send(.ping, ByteBuffer(bytes: content))
            case .pong(let content):
                frames.send(.pong, ByteBuffer(bytes: content))
            case .close(let code, let reason):
                self.phase = .closing
                self.endSession()
                frames.sendClose(code: code, reason: String(decoding: reason, as: UTF8.self))
                return
            case .open, .disconnect:
                self.phase = .closing
                self.endSession()
                frames.abort()
                return
            }
        }
    }

    // MARK: - Closing

    /// Closes the client on the proxy's initiative (publish, control message, backend failure); the backend, while
    /// attached, is told with `CLOSE` (grip-spec §7.2).
    func closeClient(code: UInt16?, reason: String) {
        switch self.phase {
        case .opening, .closing:
            return
        case .open:
            self.queue.append(.close(code: nil, reason: []))
            self.sendNext()
        case .detached:
            break
        }
        self.phase = .closing
        self.endSession()
        self.frames?.sendClose(code: code, reason: reason)
    }

    /// The backend side is done before the upgrade: nothing more to send.
    private func closeBackendSide() {
        self.phase = .closing
        self.queue = []
    }

    private func endSession() {
        self.grip?.end()
        self.keepAlivePoll?.cancel()
    }

    /// The client left before the upgrade completed.
    func clientLeftWhileOpening() {
        self.phase = .closing
        self.requestTimeout?.cancel()
        if let connection = self.connection {
            self.connection = nil
            connection.close()
        }
    }
}

// MARK: - GRIP

extension WebSocketOverHTTP: WebSocketGripOwner {
    func gripDetach() {
        guard case .open = self.phase else { return }
        self.phase = .detached
        self.queue = []
        self.keepAlivePoll?.cancel()
    }

    func gripClose(code: UInt16?, reason: String) {
        self.closeClient(code: code, reason: reason)
    }

    /// A request now, even with nothing queued; a request already in flight answers for it.
    func gripRefresh() {
        guard case .open = self.phase else { return }
        self.sendNext(poll: true)
    }
}

// MARK: - Client events

extension WebSocketOverHTTP: WebSocketFrameHandlerDelegate {
    func webSocket(_ handler: WebSocketFrameHandler, received message: WebSocketMessage) {
        switch self.phase {
        case .open:
            break
        case .detached:
            if case .close(let code, let reason) = message {
                self.phase = .closing
                self.endSession()
                self.frames?.sendClose(code: code, reason: String(buffer: reason), closeNow: true)
            }
            return
        case .opening, .closing:
            if case .close = message {
                self.frames?.abort()
            }
            return
        }
        switch message {
        case .text(let data):
            self.queue.append(.text(Array(data.readableBytesView)))
        case .binary(let data):
            self.queue.append(.binary(Array(data.readableBytesView)))
        case .ping(let data):
            self.queue.append(.ping(Array(data.readableBytesView)))
        case .pong(let data):
            self.queue.append(.pong(Array(data.readableBytesView)))
        case .close(let code, let reason):
            self.phase = .closing
            self.endSession()
            self.clientCloseAwaitingBackend = (code, reason)
            self.queue.append(.close(code: code, reason: Array(reason.readableBytesView)))
        }
        self.sendNext()
    }

    func webSocketClosed(_ handler: WebSocketFrameHandler) {
        self.frames = nil
        self.grip?.client = nil
        self.endSession()
        switch self.phase {
        case .open:
            // Vanished without a close handshake (grip-spec §7.2): the reply is ignored.
            self.phase = .closing
            self.queue.append(.disconnect)
            self.sendNext()
        case .opening, .closing, .detached:
            self.phase = .closing
        }
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
            self.responseComplete(keepAlive: self.responseHead?.isKeepAlive ?? false)
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

extension WebSocketEvent {
    /// Bytes of message content the event carries.
    fileprivate var contentSize: Int {
        switch self {
        case .text(let content), .binary(let content), .ping(let content), .pong(let content): content.count
        case .close(_, let reason): reason.count + 2
        case .open, .disconnect: 0
        }
    }
}

@available(*, unavailable)
extension WebSocketOverHTTP: Sendable {}
