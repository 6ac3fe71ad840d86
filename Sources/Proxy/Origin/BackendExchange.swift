import GRIP
import Logging
import NIOCore
import NIOHTTP1

/// What a ``BackendExchange`` tells its owner. Once connected, the connection's own events
/// (``BackendConnectionDelegate``) go to the owner directly.
protocol BackendExchangeDelegate: BackendConnectionDelegate {
    /// Connected, with the request head written but not flushed: write the body, then flush.
    func backendConnected(_ connection: BackendConnection)
    /// No target could be reached (or the target cannot be connected to); the exchange is over.
    func backendUnavailable(_ error: any Error)
}

/// The request a ``BackendExchange`` sends: the client's head and what its rewrite needs (grip-spec §2.5).
struct BackendRequest {
    /// The client's head, as the owner wants it rewritten (a WebSocket mode drops or changes some headers first).
    var clientHead: HTTPRequestHead
    var originForm: String
    var route: Route
    /// The targets, in the order they are tried: the route's, or a next link's own.
    var targets: [RouteTarget]
    var clientAddress: String?
    var clientIsTLS: Bool
    /// Whether the client is a trusted upstream GRIP proxy.
    var trusted: Bool
    /// Headers added after the rewrite, in this order (`Grip-Last`, the upgrade headers, `Connection-Id`...).
    var addedHeaders: [(name: String, value: String)] = []
    /// A `Content-Length` that replaces any the rewrite leaves (a body the owner makes itself).
    var contentLength: Int?

    /// The head sent to `target`.
    func head(for target: RouteTarget, builder: BackendRequestBuilder, now: Int) -> HTTPRequestHead {
        var head = builder.backendHead(
            for: self.clientHead,
            originForm: self.originForm,
            route: self.route,
            target: target,
            clientAddress: self.clientAddress,
            clientIsTLS: self.clientIsTLS,
            trusted: self.trusted,
            now: now
        )
        for header in self.addedHeaders {
            head.headers.add(name: header.name, value: header.value)
        }
        if let contentLength = self.contentLength {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(contentLength))
        }
        return head
    }
}

/// Why a backend exchange found no backend.
enum BackendExchangeError: Error, Equatable {
    /// The request has no target.
    case noTarget
    /// The target is not a host and port (Pushpin's built-in `test` target).
    case unsupportedTarget
}

/// One backend request's way to a backend: choosing the target, connecting (a pooled connection, or a new one for a
/// WebSocket upgrade), failing over to the route's next target, sending the request once more on a fresh connection
/// when a pooled one turns out closed, and writing the request head. The owner writes the body and reads the
/// response; it may make several requests, one after the other, with the same exchange.
///
/// The decisions are ``BackendAttempts``'; this type carries them out. Lives on the client connection's event loop.
final class BackendExchange {
    /// How connections are made.
    enum Mode {
        /// A pooled keep-alive connection, returned to the pool when the response completes cleanly.
        case pooled
        /// A new connection whose HTTP codec can be replaced after a `101` (never pooled).
        case upgrade
    }

    private let pool: BackendConnectionPool
    private let requestBuilder: BackendRequestBuilder
    private let mode: Mode
    /// The owner's logger (its level may change once the request is routed).
    var logger: Logger
    /// The owner. Weak: a connect that completes after the owner is gone gives its connection back.
    weak var delegate: (any BackendExchangeDelegate)?
    private(set) var request: BackendRequest?
    private var attempts = BackendAttempts(targetCount: 0)
    /// The connection of the current request, once connected.
    private(set) var connection: BackendConnection?
    /// Counts connects, so that one completing after its request ended (or was retried) is recognised.
    private var generation = 0
    /// Whether the current request's head went to a backend connection (on any attempt): until then the
    /// backend cannot have seen it.
    private(set) var requestWritten = false

    init(pool: BackendConnectionPool, requestBuilder: BackendRequestBuilder, mode: Mode = .pooled, logger: Logger) {
        self.pool = pool
        self.requestBuilder = requestBuilder
        self.mode = mode
        self.logger = logger
    }

    /// The target of the current (or last) attempt.
    var target: RouteTarget? {
        guard let request = self.request, self.attempts.index < request.targets.count else { return nil }
        return request.targets[self.attempts.index]
    }

    /// Sends `request`: to its first target, or with `fromFirstTarget` false to the target the last request
    /// settled on. With `failover` false, a failed connect is not tried at the next target. Ends any request
    /// still in progress first (its connection is closed).
    func start(_ request: BackendRequest, fromFirstTarget: Bool = true, failover: Bool = true) {
        self.finish(reusingConnection: false)
        if fromFirstTarget || self.attempts.targetCount != request.targets.count {
            self.attempts = BackendAttempts(targetCount: request.targets.count, failover: failover)
        }
        self.attempts.failover = failover
        self.request = request
        self.requestWritten = false
        self.carryOut(self.attempts.begin(fromFirstTarget: fromFirstTarget))
    }

    /// The connection closed, or failed, before any response byte. When it had served an earlier request and the
    /// owner can send the request whole again (`replayable`), the request goes once more to the same target on a
    /// fresh connection: the owner then hears ``BackendExchangeDelegate/backendConnected(_:)`` again, always after
    /// this call returns (``BackendExchangeDelegate/backendUnavailable(_:)`` may come during it).
    ///
    /// - Returns: false when the failure stands (the connection, if any, is closed).
    func retryOnFreshConnection(replayable: Bool) -> Bool {
        let reused = (self.connection?.exchangesServed ?? 0) > 1
        guard let action = self.attempts.closedBeforeResponse(connectionWasReused: reused, replayable: replayable)
        else {
            return false
        }
        self.closeConnection()
        self.carryOut(action)
        return true
    }

    /// Connects to the current target again, on a fresh connection (a caller's own retry after a back-off).
    func retry() {
        self.closeConnection()
        self.carryOut(self.attempts.retry())
    }

    /// Ends the current request: its connection goes back to the pool when `reusingConnection` (the response is
    /// complete, the backend keeps the connection open, and the whole request was sent), else it is closed. A
    /// connect still in progress is abandoned. Safe to call when no request is in progress.
    func finish(reusingConnection reusable: Bool) {
        self.generation += 1
        guard let connection = self.connection else { return }
        self.connection = nil
        if reusable && self.mode == .pooled {
            self.pool.release(connection)
        } else {
            connection.close()
        }
    }

    /// Hands the connection over to the owner for good (a WebSocket after its `101`); the exchange forgets it.
    func takeConnection() -> BackendConnection? {
        self.generation += 1
        let connection = self.connection
        self.connection = nil
        return connection
    }

    // MARK: - Carrying out

    private func closeConnection() {
        self.generation += 1
        guard let connection = self.connection else { return }
        self.connection = nil
        connection.close()
    }

    private func carryOut(_ action: BackendAttempts.Action) {
        guard let request = self.request else { return }
        switch action {
        case .unavailable:
            self.delegate?.backendUnavailable(BackendExchangeError.noTarget)
        case .connect(let index, let fresh):
            let target = request.targets[index]
            guard let key = BackendKey(target: target) else {
                self.logger.debug("the built-in test target is not supported")
                self.delegate?.backendUnavailable(BackendExchangeError.unsupportedTarget)
                return
            }
            self.generation += 1
            let generation = self.generation
            let completion: (Result<BackendConnection, any Error>) -> Void = { result in
                self.connectCompleted(result, generation: generation, target: target)
            }
            switch self.mode {
            case .pooled where fresh:
                self.pool.connect(key, completion: completion)
            case .pooled:
                self.pool.acquire(key, completion: completion)
            case .upgrade:
                self.pool.connect(key, forUpgrade: true, completion: completion)
            }
        }
    }

    private func connectCompleted(
        _ result: Result<BackendConnection, any Error>,
        generation: Int,
        target: RouteTarget
    ) {
        switch result {
        case .success(let connection):
            guard generation == self.generation, let delegate = self.delegate, let request = self.request else {
                // The request ended while connecting; a pooled connection is clean, so keep it.
                if self.mode == .pooled {
                    self.pool.release(connection)
                } else {
                    connection.close()
                }
                return
            }
            self.connection = connection
            connection.delegate = delegate
            connection.exchangesServed += 1
            self.requestWritten = true
            connection.write(
                .head(request.head(for: target, builder: self.requestBuilder, now: ProxyClock.unixSeconds()))
            )
            delegate.backendConnected(connection)
        case .failure(let error):
            guard generation == self.generation else { return }
            self.logger.debug("backend connect failed", metadata: ["error": "\(error)"])
            switch self.attempts.connectFailed() {
            case .unavailable:
                self.delegate?.backendUnavailable(error)
            case let action:
                self.carryOut(action)
            }
        }
    }
}

extension BackendKey {
    /// Where `target` is connected to; nil when it is not a host and port.
    init?(target: RouteTarget) {
        guard case .host(let host, let port) = target.kind else { return nil }
        self.init(
            host: host,
            port: port,
            tls: target.ssl,
            verifyCertificate: !target.insecure,
            serverName: Self.tlsServerName(connectHost: host, target: target)
        )
    }

    /// The name a TLS backend's certificate is checked against: the `host=` override's host unless
    /// `trust_connect_host` is set, else the host connected to; none for an IP address (SNI cannot carry one).
    static func tlsServerName(connectHost: String, target: RouteTarget) -> String? {
        var name = connectHost
        if !target.trustConnectHost, let hostHeader = target.hostHeader {
            name = RequestTarget.hostWithoutPort(hostHeader)
        }
        let isIPAddress = name.contains(":") || name.allSatisfy { $0.isNumber || $0 == "." }
        return isIPAddress ? nil : name
    }
}

@available(*, unavailable)
extension BackendExchange: Sendable {}
