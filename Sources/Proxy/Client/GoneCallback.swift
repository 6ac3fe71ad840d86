import GRIP
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A `Grip-Link: <...>; rel=gone` callback (Pushpin 1.41): a `POST` with an empty body to the link once a held
/// client has gone, so that a backend learns of every client that went away. Best effort: sent once, not retried,
/// its answer ignored. Sent when the client disconnects (or is cut as too slow) while held, when a shutdown ends a
/// held stream, and by the next server for the holds of a server that died (``ProxyServer``).
///
/// Lives on its pool's event loop, and keeps itself alive until its request ends.
final class GoneCallback: BackendExchangeDelegate {
    private let exchange: BackendExchange
    private let inFlight: GoneCallbacksInFlight
    private var timeout: Scheduled<Void>?
    /// Keeps the callback alive while its request is in flight (the exchange holds its delegate weakly).
    private var retained: GoneCallback?
    private var responseStarted = false
    private var responseIsKeepAlive = false
    private var ended = false

    /// Sends the callback for `link`, through `route` (its targets, unless the link names another host, and its
    /// signature). Call it on `eventLoop`, `pool`'s.
    static func send(
        _ link: LinkTarget,
        route: Route,
        engine: ProxyEngine,
        pool: BackendConnectionPool,
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        let callback = GoneCallback(
            exchange: BackendExchange(pool: pool, requestBuilder: engine.requestBuilder, logger: logger),
            inFlight: engine.goneCallbacks
        )
        callback.start(
            BackendRequest(
                clientHead: link.requestHead(method: .POST),
                originForm: link.originForm,
                route: route,
                targets: link.directTarget.map { [$0] } ?? route.targets,
                clientAddress: nil,
                clientIsTLS: false,
                trusted: false
            ),
            timeout: engine.responseTimeout,
            eventLoop: eventLoop
        )
    }

    private init(exchange: BackendExchange, inFlight: GoneCallbacksInFlight) {
        self.exchange = exchange
        self.inFlight = inFlight
    }

    private func start(_ request: BackendRequest, timeout: TimeAmount, eventLoop: any EventLoop) {
        self.retained = self
        self.inFlight.started()
        self.exchange.delegate = self
        self.exchange.logger.debug("gone callback", metadata: ["p8.uri": "\(request.originForm)"])
        self.timeout = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.end(reusingConnection: false, failure: "no answer in time")
        }
        self.exchange.start(request, failover: true)
    }

    private func end(reusingConnection: Bool, failure: String? = nil) {
        guard !self.ended else { return }
        self.ended = true
        if let failure {
            self.exchange.logger.info("gone callback failed", metadata: ["error": "\(failure)"])
        }
        self.timeout?.cancel()
        self.exchange.finish(reusingConnection: reusingConnection)
        self.exchange.delegate = nil
        self.inFlight.ended()
        self.retained = nil
    }

    // MARK: - BackendExchangeDelegate

    func backendConnected(_ connection: BackendConnection) {
        connection.write(.end(nil))
        connection.flush()
    }

    func backendUnavailable(_ error: any Error) {
        self.end(reusingConnection: false, failure: "\(error)")
    }

    func backendResponsePart(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            self.responseStarted = true
            self.responseIsKeepAlive = head.isKeepAlive
            if !(200..<300).contains(head.status.code) {
                self.exchange.logger.debug("gone callback answered", metadata: ["p8.status": "\(head.status.code)"])
            }
        case .body:
            break
        case .end:
            self.end(reusingConnection: self.responseIsKeepAlive)
        }
    }

    func backendReadComplete() {}

    func backendWritabilityChanged(isWritable: Bool) {}

    func backendFailed(_ error: any Error) {
        self.closed(failure: "\(error)")
    }

    func backendClosed() {
        self.closed(failure: "the backend closed the connection")
    }

    /// A pooled connection the backend had closed is tried once more, fresh, before any answer; nothing is
    /// retried after that (the callback is best effort).
    private func closed(failure: String) {
        guard !self.ended else { return }
        if self.responseStarted || !self.exchange.retryOnFreshConnection(replayable: true) {
            self.end(reusingConnection: false, failure: failure)
        }
    }
}

/// The gone callbacks in flight, so that a shutdown gives them a moment to leave before the pools close.
final class GoneCallbacksInFlight: Sendable {
    private let count = Atomic<Int>(0)

    var isEmpty: Bool { self.count.load(ordering: .relaxed) == 0 }

    fileprivate func started() {
        self.count.add(1, ordering: .relaxed)
    }

    fileprivate func ended() {
        self.count.subtract(1, ordering: .relaxed)
    }
}
