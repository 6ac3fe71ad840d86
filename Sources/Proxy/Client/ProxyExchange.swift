import GRIP
import Logging
import NIOCore
import NIOHTTP1
import Publish

/// One client request and its way through a backend: routing, connecting (with failover over the route's
/// targets), streaming the request body up and the response down with back-pressure both ways, timeouts,
/// and the decision whether the response is plain or GRIP. A GRIP hold keeps the exchange alive while the
/// publish side holds the client (see `ProxyExchange+Hold.swift`); it may then make more backend requests
/// for the same client: the original request again (with `Grip-Last`), or next links.
///
/// Lives on the client connection's event loop, as does every backend connection it uses.
final class ProxyExchange {
    unowned let client: ClientConnectionHandler
    let engine: ProxyEngine
    /// Connects each backend request of the exchange.
    private let backend: BackendExchange
    /// The client's request (for JSON-P, the request its parameters describe).
    private(set) var requestHead: HTTPRequestHead
    /// The connection's logger, at the route's `log_level` once routed.
    private(set) var logger: Logger

    /// What a backend request of this exchange is for.
    enum BackendRequestKind {
        /// The client's request.
        case original
        /// The client's request again, because the client is behind on these channels (grip-spec §5.2).
        case retry([GripLast])
        /// A stream's next link (grip-spec §3.6): the response body is appended to the stream.
        case nextLink(NextLink, [GripLast])
    }

    var requestKind = BackendRequestKind.original
    /// The held client, once a backend response said to hold (or to follow a next link).
    var hold: HeldExchange?
    /// Counts holds of this exchange, so that late calls for an ended hold are recognised.
    var holdGeneration = 0
    /// Whether a stream's head has been sent (a stream outlives the holds and next links that feed it).
    var streamStarted = false

    private(set) var route: Route?
    private(set) var originForm = "/"
    private var trusted = false
    /// The current backend request's connection, once connected.
    private var connection: BackendConnection? { self.backend.connection }
    /// When the current backend request was sent, and whether its outcome went to the metrics.
    private var backendRequestSent: ContinuousClock.Instant?
    private var backendOutcomeRecorded = false
    /// A JSON-P request: its body comes from the query, whatever the client sends.
    private var ignoresClientBody = false

    /// Client body received while no backend connection is attached yet.
    private var pendingBody: [ByteBuffer] = []
    private var pendingBodyBytes = 0
    /// The first part of the request body, kept so the request can be re-sent on a fresh connection.
    private var replayableBody: [ByteBuffer] = []
    private var requestBodyBytes = 0
    private(set) var requestComplete = false
    /// Whether the client connection may carry another request after a relayed response.
    private var clientKeepAlive = true
    /// Failed attempts at the current next link (grip-spec §3.6: up to 5, with back-off).
    var linkAttempts = 0
    /// A next-link request this exchange makes for others too, while they may still join it, and those that
    /// joined (see `NextLinkFetches`).
    private var sharedFetch: (key: NextLinkFetches.Key, fetch: NextLinkFetches.Fetch)?
    private var followers: [NextLinkFetches.Follower] = []

    private enum ResponseState {
        case waitingForHead
        /// A plain response being relayed; `keepAlive` says whether the backend connection may be reused.
        case relaying(backendKeepAlive: Bool)
        /// A next link's plain response, appended to the client's stream.
        case appendingToStream(backendKeepAlive: Bool)
        /// A GRIP response, buffered whole before it is acted on.
        case bufferingGrip(HTTPResponseHead, ByteBuffer)
        case complete
    }

    private var response = ResponseState.waitingForHead
    /// The current backend request is over (the client may still be held).
    private(set) var finished = false
    private var timeout: Scheduled<Void>?
    private var lastBackendActivity = NIODeadline.now()

    init(
        client: ClientConnectionHandler,
        engine: ProxyEngine,
        pool: BackendConnectionPool,
        requestHead: HTTPRequestHead,
        logger: Logger
    ) {
        self.client = client
        self.engine = engine
        self.backend = BackendExchange(pool: pool, requestBuilder: engine.requestBuilder, logger: logger)
        self.requestHead = requestHead
        self.logger = logger
        self.backend.delegate = self
    }

    var eventLoop: any EventLoop { self.client.eventLoop }

    // MARK: - Client events

    func start() {
        let target = RequestTarget(uri: self.requestHead.uri, hostHeader: self.requestHead.headers.first(name: "host"))
        let routes = self.engine.routes.current
        var route: Route?
        if self.engine.settings.proxy.acceptPushpinRoute, let id = self.requestHead.headers.first(name: "pushpin-route")
        {
            route = routes.route(id: id)
        }
        if route == nil {
            route = routes.route(host: target.host, path: target.path, isTLS: self.client.isTLS, isWebSocket: false)
        }
        let crossOrigin = self.engine.settings.proxy.autoCrossOrigin || route?.autoCrossOrigin == true
        guard let route else {
            if crossOrigin {
                self.client.crossOrigin = .cors(request: self.requestHead)
            }
            self.fail(with: .noRoute(host: target.host))
            return
        }
        self.route = route
        if let level = route.logLevel {
            self.logger.logLevel = Logger.Level(pushpinLevel: level)
            self.backend.logger = self.logger
        }
        self.originForm = target.originForm
        if crossOrigin {
            guard self.startCrossOrigin(config: route.jsonp) else { return }
        }
        self.trusted = self.engine.requestBuilder.isTrusted(self.requestHead, now: ProxyClock.unixSeconds())
        self.sendBackendRequest()
    }

    func clientBody(_ buffer: ByteBuffer) {
        guard !self.finished, !self.ignoresClientBody else { return }
        self.requestBodyBytes += buffer.readableBytes
        if self.requestBodyBytes <= ProxyLimits.maxBufferedRequestBody {
            self.replayableBody.append(buffer)
        } else {
            self.replayableBody = []
        }
        if let connection = self.connection {
            connection.write(.body(.byteBuffer(buffer)))
            if !connection.isWritable {
                self.client.setReadPaused(true)
            }
        } else {
            self.pendingBody.append(buffer)
            self.pendingBodyBytes += buffer.readableBytes
            if self.pendingBodyBytes > ProxyLimits.maxPendingRequestBody {
                self.client.setReadPaused(true)
            }
        }
    }

    func clientEnd() {
        guard !self.finished else { return }
        self.requestComplete = true
        if let connection = self.connection {
            connection.write(.end(nil))
            connection.flush()
        }
    }

    func clientReadComplete() {
        self.connection?.flush()
    }

    func clientWritabilityChanged(isWritable: Bool) {
        if isWritable {
            self.connection?.isReadPaused = false
        }
    }

    /// The client went away: abandon the backend request (its connection cannot be reused mid-exchange) and
    /// the hold.
    func clientClosed() {
        self.endHold()
        guard !self.finished else { return }
        self.finish(reusingConnection: false)
    }

    /// Starts another backend request for the same client (a retry or a next link), from the first target.
    func startBackendRequest(_ kind: BackendRequestKind) {
        self.requestKind = kind
        self.finished = false
        self.backendOutcomeRecorded = false
        self.backendRequestSent = nil
        self.response = .waitingForHead
        self.pendingBody = self.replayableBody
        self.pendingBodyBytes = self.requestBodyBytes
        if case .nextLink(let link, let gripLast) = kind, let route = self.route {
            switch self.engine.nextLinkFetches.join(route: route, link: link, gripLast: gripLast, self) {
            case .follow:
                // Another exchange's request for the same link answers this one too.
                return
            case .lead(let key, let fetch):
                self.sharedFetch = (key, fetch)
            }
        }
        self.sendBackendRequest()
    }

    /// Hands a response part of a shared next-link request to the exchanges that follow it (the first part
    /// closes the request to new followers).
    private func shareWithFollowers(_ part: HTTPClientResponsePart) {
        if let shared = self.sharedFetch {
            self.sharedFetch = nil
            self.followers = self.engine.nextLinkFetches.start(shared.key, shared.fetch)
        }
        for follower in self.followers {
            follower.receive(part)
        }
        if case .end = part {
            self.followers = []
        }
    }

    /// The request ended before its response did: its followers see their connection close.
    private func abandonFollowers() {
        if let shared = self.sharedFetch {
            self.sharedFetch = nil
            self.followers += self.engine.nextLinkFetches.start(shared.key, shared.fetch)
        }
        let abandoned = self.followers
        self.followers = []
        for follower in abandoned {
            follower.abandon()
        }
    }

    /// Auto cross-origin: a JSON-P request is rewritten into the request it describes, any other gets CORS
    /// headers on its response.
    ///
    /// - Returns: false when the JSON-P parameters are invalid (the client has been answered `400`).
    private func startCrossOrigin(config: JSONPConfig) -> Bool {
        let jsonp: JSONPRequest?
        do {
            jsonp = try JSONPRequest.parse(
                method: self.requestHead.method.rawValue,
                originForm: self.originForm,
                headers: self.requestHead.headers.map { HeaderField(name: $0.name, value: $0.value) },
                config: config
            )
        } catch {
            self.finish(reusingConnection: false)
            self.sendErrorResponse(.badRequest(error.message))
            return false
        }
        guard let jsonp else {
            self.client.crossOrigin = .cors(request: self.requestHead)
            return true
        }
        var headers = HTTPHeaders(jsonp.headers.map { ($0.name, $0.value) })
        headers.remove(name: "content-length")
        headers.remove(name: "transfer-encoding")
        if let body = jsonp.body {
            headers.add(name: "Content-Length", value: String(body.count))
            let buffer = ByteBuffer(bytes: body)
            self.pendingBody = [buffer]
            self.replayableBody = [buffer]
            self.pendingBodyBytes = body.count
            self.requestBodyBytes = body.count
        }
        self.ignoresClientBody = true
        self.originForm = jsonp.originForm
        self.requestHead = HTTPRequestHead(
            version: self.requestHead.version,
            method: HTTPMethod(rawValue: jsonp.method),
            uri: jsonp.originForm,
            headers: headers
        )
        self.client.crossOrigin = .jsonp(jsonp, version: self.requestHead.version)
        return true
    }

    // MARK: - Connecting

    /// Sends the current backend request (``requestKind``) through ``BackendExchange``, from the first target.
    private func sendBackendRequest() {
        guard let route = self.route else { return }
        var request = BackendRequest(
            clientHead: self.requestHead,
            originForm: self.originForm,
            route: route,
            targets: route.targets,
            clientAddress: self.client.remoteAddressText,
            clientIsTLS: self.client.isTLS,
            trusted: self.trusted
        )
        var gripLast: [GripLast] = []
        switch self.requestKind {
        case .original:
            break
        case .retry(let channels):
            gripLast = channels
        case .nextLink(let link, let channels):
            gripLast = channels
            request.clientHead = link.requestHead
            request.originForm = link.originForm
            if let direct = link.directTarget {
                // A link to another backend: that one only, no failover.
                request.targets = [direct]
            }
        }
        request.addedHeaders = gripLast.map { (name: "Grip-Last", value: $0.headerValue) }
        self.backend.start(request)
    }

    /// The name a TLS backend's certificate is checked against (see ``BackendKey/tlsServerName(connectHost:target:)``).
    static func tlsServerName(connectHost: String, target: RouteTarget) -> String? {
        BackendKey.tlsServerName(connectHost: connectHost, target: target)
    }

    func backendUnavailable(_ error: any Error) {
        guard !self.finished else { return }
        self.fail(with: .originError)
    }

    func backendConnected(_ connection: BackendConnection) {
        if case .nextLink = self.requestKind {
            // A next link is a GET without a body, whatever the client sent.
            connection.write(.end(nil))
        } else {
            for part in self.pendingBody {
                connection.write(.body(.byteBuffer(part)))
            }
            if self.requestComplete {
                connection.write(.end(nil))
            }
        }
        self.pendingBody = []
        self.pendingBodyBytes = 0
        connection.flush()
        self.backendRequestSent = .now
        self.client.setReadPaused(!connection.isWritable)
        self.lastBackendActivity = .now()
        self.armTimeout(after: self.engine.responseTimeout)
    }

    /// A reused connection failed before any response byte: the backend probably closed it while it was
    /// idle. Send the request again on a new connection when the whole body is still at hand.
    private func retryOnFreshConnection() -> Bool {
        guard case .waitingForHead = self.response else { return false }
        let replayable = self.requestBodyBytes <= ProxyLimits.maxBufferedRequestBody
        guard self.backend.retryOnFreshConnection(replayable: replayable) else { return false }
        self.pendingBody = self.replayableBody
        self.pendingBodyBytes = self.requestBodyBytes
        self.timeout?.cancel()
        return true
    }

    // MARK: - Timeout

    private func armTimeout(after delay: TimeAmount) {
        self.timeout?.cancel()
        // Holds the exchange until the task fires or is cancelled; every way an exchange ends cancels it.
        self.timeout = self.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.timeoutFired()
        }
    }

    /// Fires at most once per timeout period; activity since the last arming only moves the deadline.
    private func timeoutFired() {
        guard !self.finished, let connection = self.connection else { return }
        let deadline = self.lastBackendActivity + self.engine.responseTimeout
        if connection.isReadPaused || deadline > .now() {
            // Waiting on the client, not on the backend, or the backend was active meanwhile.
            self.armTimeout(after: connection.isReadPaused ? self.engine.responseTimeout : deadline - .now())
            return
        }
        self.logger.debug("backend timed out")
        if case .waitingForHead = self.response {
            self.fail(with: .originTimeout)
        } else {
            self.abort()
        }
    }

    // MARK: - Finishing

    /// Ends the exchange on the backend side. The connection goes back to the pool only when `reusable`
    /// (the backend's response is complete and keeps the connection open) and the whole request was sent.
    private func finish(reusingConnection reusable: Bool) {
        self.abandonFollowers()
        self.finished = true
        self.timeout?.cancel()
        self.timeout = nil
        self.response = .complete
        var requestSent = self.requestComplete
        if case .nextLink = self.requestKind {
            requestSent = true
        }
        self.backend.finish(reusingConnection: reusable && requestSent)
    }

    /// Answers the client with one of the proxy's own responses and ends the exchange; for a next link, counts
    /// a failed attempt instead (the stream has started).
    private func fail(with error: ProxyErrorResponse) {
        guard !self.finished else { return }
        if error == .originError || error == .originTimeout {
            self.recordBackendOutcome(status: nil)
        }
        self.finish(reusingConnection: false)
        if case .nextLink = self.requestKind {
            self.nextLinkFailed()
            return
        }
        self.sendErrorResponse(error)
    }

    func sendErrorResponse(_ error: ProxyErrorResponse) {
        let keepAlive = self.requestHead.isKeepAlive && self.requestComplete
        self.client.respond(with: error, version: self.requestHead.version, keepAlive: keepAlive)
    }

    /// Ends the client connection abruptly: the response has started and cannot be completed.
    private func abort() {
        guard !self.finished else { return }
        self.finish(reusingConnection: false)
        self.endHold()
        self.client.abortConnection()
    }

    private func completeRelayedResponse(backendKeepAlive: Bool, trailers: HTTPHeaders?) {
        self.finish(reusingConnection: backendKeepAlive)
        self.client.endResponse(trailers: trailers, keepAlive: self.clientKeepAlive && self.requestComplete)
    }

    // MARK: - GRIP responses

    private func gripResponseComplete(head: HTTPResponseHead, body: ByteBuffer) {
        self.finish(reusingConnection: head.isKeepAlive)
        if case .nextLink = self.requestKind, !(200..<300).contains(head.status.code) {
            self.nextLinkFailed()
            return
        }
        let instruct: Instruct
        do {
            instruct = try Instruct.parse(
                status: Int(head.status.code),
                reason: head.status.reasonPhrase,
                headers: head.headers.map { ($0.name, $0.value) },
                body: Array(body.readableBytesView)
            )
        } catch {
            self.logger.debug("invalid GRIP instructions", metadata: ["error": "\(error)"])
            if case .nextLink = self.requestKind {
                self.endStream(debugMessage: "Failed to parse accept instructions: \(error.description)")
                return
            }
            self.sendErrorResponse(self.isDebug ? .invalidInstructions(error.description) : .originError)
            return
        }
        if case .nextLink = self.requestKind {
            self.nextLinkAnswered(instruct)
            return
        }
        if instruct.holdMode != .none || instruct.nextLink != nil {
            self.beginHold(instruct)
            return
        }
        var headers = HTTPHeaders(instruct.response.headers.map { ($0.name, $0.value) })
        headers.add(name: "Content-Length", value: String(instruct.response.body.count))
        let answer = HTTPResponseHead(
            version: self.requestHead.version,
            status: .custom(code: UInt(instruct.response.code), reasonPhrase: instruct.response.reason),
            headers: headers
        )
        let keepAlive = self.requestHead.isKeepAlive && self.requestComplete
        self.client.respond(head: answer, body: ByteBuffer(bytes: instruct.response.body), keepAlive: keepAlive)
    }
}

// MARK: - Backend events

extension ProxyExchange: BackendExchangeDelegate {
    /// Whether the route or the proxy has `debug` on: error details are shown to the client.
    var isDebug: Bool {
        self.engine.settings.proxy.debug || self.route?.debug == true
    }

    func backendResponsePart(_ part: HTTPClientResponsePart) {
        guard !self.finished else { return }
        self.lastBackendActivity = .now()
        var part = part
        if case .head(var head) = part, let connection = self.connection {
            head.status = connection.wireStatus(head.status)
            part = .head(head)
        }
        self.shareWithFollowers(part)
        switch (part, self.response) {
        case (.head(let head), .waitingForHead):
            self.responseHeadReceived(head)
        case (.body(let buffer), .relaying), (.body(let buffer), .appendingToStream):
            self.client.writeBody(buffer)
            if !self.client.isWritable {
                self.connection?.isReadPaused = true
            }
        case (.body(var buffer), .bufferingGrip(let head, var body)):
            guard body.readableBytes + buffer.readableBytes <= ProxyLimits.maxGripResponseBody else {
                self.logger.debug("GRIP instruct response too large")
                self.fail(with: .originError)
                return
            }
            self.response = .complete  // drop the reference so `body` stays uniquely owned
            body.writeBuffer(&buffer)
            self.response = .bufferingGrip(head, body)
        case (.end(let trailers), .relaying(let backendKeepAlive)):
            self.completeRelayedResponse(backendKeepAlive: backendKeepAlive, trailers: trailers)
        case (.end, .appendingToStream(let backendKeepAlive)):
            // A plain next-link response ends the stream (grip-spec §3.6).
            self.finish(reusingConnection: backendKeepAlive)
            self.endStream(debugMessage: nil)
        case (.end, .bufferingGrip(let head, let body)):
            self.gripResponseComplete(head: head, body: body)
        default:
            self.logger.debug("unexpected response part from backend")
            self.fail(with: .originError)
        }
    }

    /// Counts the current backend request's outcome once: its status, or nil when it got no response.
    private func recordBackendOutcome(status: Int?) {
        guard let metrics = self.engine.metrics, let route = self.route, !self.backendOutcomeRecorded else { return }
        self.backendOutcomeRecorded = true
        let sent = self.backendRequestSent
        metrics.backendRequestEnded(route: route.id, status: status, after: sent.map { .now - $0 })
    }

    private func responseHeadReceived(_ head: HTTPResponseHead) {
        guard let route = self.route else { return }
        self.recordBackendOutcome(status: Int(head.status.code))
        if case .nextLink = self.requestKind {
            if GripResponseInspection.isGripResponse(head) {
                self.response = .bufferingGrip(head, ByteBuffer())
            } else if (200..<300).contains(head.status.code) {
                self.linkAttempts = 0
                self.response = .appendingToStream(backendKeepAlive: head.isKeepAlive)
            } else {
                self.fail(with: .originError)
            }
            return
        }
        if !self.trusted && !route.noGrip && GripResponseInspection.isGripResponse(head) {
            guard self.requestBodyBytes <= ProxyLimits.maxBufferedRequestBody else {
                self.fail(with: .requestTooLargeForGrip)
                return
            }
            self.response = .bufferingGrip(head, ByteBuffer())
            return
        }
        var headers = head.headers
        HopByHopHeaders.remove(from: &headers)
        // A close-delimited body cannot be re-framed for an HTTP/1.0 client without closing afterwards.
        let hasLength = headers.contains(name: "content-length")
        let bodyless =
            self.requestHead.method == .HEAD || head.status == .noContent || head.status == .notModified
            || head.status.code < 200
        self.clientKeepAlive =
            self.requestHead.isKeepAlive && (self.requestHead.version.minor >= 1 || hasLength || bodyless)
        if !self.clientKeepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if self.requestHead.version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        self.response = .relaying(backendKeepAlive: head.isKeepAlive)
        self.client.writeHead(
            HTTPResponseHead(version: self.requestHead.version, status: head.status, headers: headers)
        )
    }

    func backendReadComplete() {
        for follower in self.followers {
            follower.readComplete()
        }
        switch self.response {
        case .relaying, .appendingToStream:
            self.client.flush()
        default:
            break
        }
    }

    func backendWritabilityChanged(isWritable: Bool) {
        self.client.setReadPaused(!isWritable)
    }

    func backendFailed(_ error: any Error) {
        self.logger.debug("backend connection failed", metadata: ["error": "\(error)"])
        self.backendClosed()
    }

    func backendClosed() {
        guard !self.finished else { return }
        if self.retryOnFreshConnection() {
            return
        }
        self.backend.finish(reusingConnection: false)
        switch self.response {
        case .waitingForHead, .bufferingGrip:
            self.fail(with: .originError)
        case .appendingToStream:
            self.finish(reusingConnection: false)
            self.endStream(debugMessage: nil)
        case .relaying, .complete:
            self.abort()
        }
    }
}

@available(*, unavailable)
extension ProxyExchange: Sendable {}
