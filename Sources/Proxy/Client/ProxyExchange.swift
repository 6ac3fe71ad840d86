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
/// The decisions are ``ProxyExchangeStateMachine``'s, the connecting ``BackendExchange``'s; this class carries
/// them out. Lives on the client connection's event loop, as does every backend connection it uses.
final class ProxyExchange {
    unowned let client: ClientConnectionHandler
    let engine: ProxyEngine
    /// Connects each backend request of the exchange; made for the first, and let go while the client is held
    /// (a held request may last hours, and a retry or a next link makes a new one).
    private(set) var backend: BackendExchange?
    /// The event loop's backend connections (also for the hold's gone callback).
    let pool: BackendConnectionPool
    /// The exchange's state: request body, response, failures.
    var state: ProxyExchangeStateMachine
    /// The connection's logger, at the route's `log_level` once routed.
    private(set) var logger: Logger

    typealias BackendRequestKind = ProxyExchangeStateMachine.RequestKind

    /// The client's request (for JSON-P, the request its parameters describe).
    var requestHead: HTTPRequestHead { self.state.requestHead }
    var requestKind: BackendRequestKind { self.state.kind }
    var requestComplete: Bool { self.state.requestComplete }
    /// The current backend request is over (the client may still be held).
    var finished: Bool { self.state.finished }
    /// Failed attempts at the current next link (grip-spec §3.6: up to 5, with back-off).
    var linkAttempts: Int {
        get { self.state.linkAttempts }
        set { self.state.linkAttempts = newValue }
    }

    /// The held client, once a backend response said to hold (or to follow a next link).
    var hold: HeldExchange?
    /// The decisions of the holds (generations, long-poll or stream, whether the stream's head is written).
    var holds = HoldStateMachine()

    private(set) var route: Route?
    private(set) var originForm = "/"
    private(set) var trusted = false
    /// The current backend request's connection, once connected.
    var connection: BackendConnection? { self.backend?.connection }
    /// When the current backend request was sent, and whether its outcome went to the metrics.
    var backendRequestSent: ContinuousClock.Instant?
    var backendOutcomeRecorded = false
    /// A next-link request this exchange makes for others too, while they may still join it, and those that
    /// joined (see `NextLinkFetches`).
    private var sharedFetch: (key: NextLinkFetches.Key, fetch: NextLinkFetches.Fetch)?
    private(set) var followers: [NextLinkFetches.Follower] = []

    var timeout: Scheduled<Void>?
    var lastBackendActivity = NIODeadline.now()

    init(
        client: ClientConnectionHandler,
        engine: ProxyEngine,
        pool: BackendConnectionPool,
        requestHead: HTTPRequestHead,
        logger: Logger
    ) {
        self.client = client
        self.engine = engine
        self.pool = pool
        self.state = ProxyExchangeStateMachine(requestHead: requestHead)
        self.logger = logger
    }

    /// The exchange's backend side, made on first use.
    func backendExchange() -> BackendExchange {
        if let backend = self.backend {
            return backend
        }
        let backend = BackendExchange(pool: self.pool, requestBuilder: self.engine.requestBuilder, logger: self.logger)
        backend.delegate = self
        self.backend = backend
        return backend
    }

    /// Lets the backend side go once its request is over and the client is held.
    func releaseBackendWhileHeld() {
        guard self.finished, self.hold != nil else { return }
        self.backend = nil
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
            self.backend?.logger = self.logger
        }
        self.originForm = target.originForm
        if crossOrigin {
            guard self.startCrossOrigin(config: route.jsonp) else { return }
        }
        self.trusted = self.engine.requestBuilder.isTrusted(self.requestHead, now: ProxyClock.unixSeconds())
        self.sendBackendRequest()
    }

    /// A held request taken over from an earlier server: routed as ``start()`` routes it (by the route's id when
    /// the hold had one, else by host and path), its backend request over. False when no route takes it now.
    func takeOver(routeID: String?) -> Bool {
        let target = RequestTarget(uri: self.requestHead.uri, hostHeader: self.requestHead.headers.first(name: "host"))
        let routes = self.engine.routes.current
        let route =
            routeID.flatMap { routes.route(id: $0) }
            ?? routes.route(host: target.host, path: target.path, isTLS: self.client.isTLS, isWebSocket: false)
        guard let route else { return false }
        self.route = route
        if let level = route.logLevel {
            self.logger.logLevel = Logger.Level(pushpinLevel: level)
            self.backend?.logger = self.logger
        }
        self.originForm = target.originForm
        self.trusted = self.engine.requestBuilder.isTrusted(self.requestHead, now: ProxyClock.unixSeconds())
        self.state = .takenOver(requestHead: self.requestHead)
        return true
    }

    func clientBody(_ buffer: ByteBuffer) {
        switch self.state.clientBody(buffer) {
        case .none:
            break
        case .forward(let buffer):
            guard let connection = self.connection else { return }
            connection.write(.body(.byteBuffer(buffer)))
            if !connection.isWritable {
                self.client.setReadPaused(true)
            }
        case .queued(let pauseClient):
            if pauseClient {
                self.client.setReadPaused(true)
            }
        }
    }

    func clientEnd() {
        if self.state.clientEnd(), let connection = self.connection {
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
        self.clientLeftHold()
        guard !self.finished else { return }
        self.finish(reusingConnection: false)
    }

    /// Starts another backend request for the same client (a retry or a next link), from the first target.
    func startBackendRequest(_ kind: BackendRequestKind) {
        self.state.startBackendRequest(kind)
        self.backendOutcomeRecorded = false
        self.backendRequestSent = nil
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
    func shareWithFollowers(_ part: HTTPClientResponsePart) {
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
        }
        self.originForm = jsonp.originForm
        let head = HTTPRequestHead(
            version: self.requestHead.version,
            method: HTTPMethod(rawValue: jsonp.method),
            uri: jsonp.originForm,
            headers: headers
        )
        self.state.replaceRequest(head, body: jsonp.body)
        self.client.crossOrigin = .jsonp(jsonp, version: self.requestHead.version)
        return true
    }

    // MARK: - Timeout

    func armTimeout(after delay: TimeAmount) {
        self.timeout?.cancel()
        // Holds the exchange until the task fires or is cancelled; every way an exchange ends cancels it.
        self.timeout = self.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            self.timeoutFired()
        }
    }

    /// Fires at most once per timeout period; activity since the last arming only moves the deadline.
    private func timeoutFired() {
        let action = self.state.timeoutFired(
            now: .now(),
            lastActivity: self.lastBackendActivity,
            timeout: self.engine.responseTimeout,
            readPaused: self.connection?.isReadPaused ?? false
        )
        if case .rearm(let delay) = action {
            self.armTimeout(after: delay)
            return
        }
        if action != .none {
            self.logger.debug("backend timed out")
        }
        self.carryOut(action)
    }

    func carryOut(_ action: ProxyExchangeStateMachine.FailureAction) {
        switch action {
        case .none, .rearm:
            break
        case .fail(let error):
            self.fail(with: error)
        case .endStream:
            self.finish(reusingConnection: false)
            self.endStream(debugMessage: nil)
        case .abort:
            self.abort()
        }
    }

    // MARK: - Finishing

    /// Ends the exchange on the backend side. The connection goes back to the pool only when `reusable`
    /// (the backend's response is complete and keeps the connection open) and the whole request was sent.
    func finish(reusingConnection reusable: Bool) {
        self.abandonFollowers()
        self.timeout?.cancel()
        self.timeout = nil
        self.backend?.finish(reusingConnection: self.state.finish(reusingConnection: reusable))
    }

    /// Answers the client with one of the proxy's own responses and ends the exchange; for a next link, counts
    /// a failed attempt instead (the stream has started).
    func fail(with error: ProxyErrorResponse) {
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
        self.client.respond(with: error, version: self.requestHead.version, keepAlive: self.state.keepsClient)
    }

    /// Ends the client connection abruptly: the response has started and cannot be completed.
    private func abort() {
        guard !self.finished else { return }
        self.finish(reusingConnection: false)
        self.endHold()
        self.client.abortConnection()
    }

    // MARK: - GRIP responses

    func gripResponseComplete(head: HTTPResponseHead, body: ByteBuffer) {
        self.finish(reusingConnection: head.isKeepAlive)
        switch self.state.gripOutcome(head: head, body: body) {
        case .nextLinkFailed:
            self.nextLinkFailed()
        case .invalid(let error):
            self.logger.debug("invalid GRIP instructions", metadata: ["error": "\(error)"])
            if case .nextLink = self.requestKind {
                self.endStream(debugMessage: "Failed to parse accept instructions: \(error.description)")
            } else {
                self.sendErrorResponse(self.isDebug ? .invalidInstructions(error.description) : .originError)
            }
        case .nextLinkAnswered(let instruct):
            self.nextLinkAnswered(instruct)
        case .hold(let instruct):
            self.beginHold(instruct)
        case .respond(let answer, let body):
            self.client.respond(head: answer, body: ByteBuffer(bytes: body), keepAlive: self.state.keepsClient)
        }
    }
}

@available(*, unavailable)
extension ProxyExchange: Sendable {}
