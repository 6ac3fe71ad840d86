import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Keep-alive connections to backends, one pool per event loop: a client connection only ever uses
/// backend connections on its own loop, so no request hops between threads and the pool needs no lock.
final class BackendConnectionPool {
    private let eventLoop: any EventLoop
    private let descriptors: DescriptorBudget
    private let connectTimeout: TimeAmount
    private let logger: Logger
    private var idle: [BackendKey: [BackendConnection]] = [:]
    /// TLS client contexts, by whether they verify certificates (made once: they load the trust roots).
    private var tlsContexts: [Bool: NIOSSLContext] = [:]
    /// Requests waiting for a connection while the process is at its descriptor budget, oldest first.
    private var waiting: [Waiter] = []
    private var waitingRetry: Scheduled<Void>?

    init(eventLoop: any EventLoop, descriptors: DescriptorBudget, connectTimeout: TimeAmount, logger: Logger) {
        self.eventLoop = eventLoop
        self.descriptors = descriptors
        self.logger = logger
        self.connectTimeout = connectTimeout
    }

    /// Calls `completion` on this loop with an idle connection to `key` if one is still open, else a new one.
    func acquire(_ key: BackendKey, completion: @escaping (Result<BackendConnection, any Error>) -> Void) {
        self.eventLoop.assertInEventLoop()
        while var connections = self.idle[key], let connection = connections.popLast() {
            self.idle[key] = connections.isEmpty ? nil : connections
            if connection.isActive {
                completion(.success(connection))
                return
            }
        }
        self.open(key, forUpgrade: false, reusable: true, completion: completion)
    }

    /// Opens a new connection, never a pooled one (used to retry after a reused connection failed).
    ///
    /// With `forUpgrade`, the HTTP decoder hands bytes that follow a `101` response to the handler after it when
    /// it is removed (a WebSocket passthrough swaps in its frame codec); such a connection never returns to the
    /// pool.
    func connect(
        _ key: BackendKey,
        forUpgrade: Bool = false,
        completion: @escaping (Result<BackendConnection, any Error>) -> Void
    ) {
        self.open(key, forUpgrade: forUpgrade, reusable: false, completion: completion)
    }

    /// Opens a connection if the descriptor budget allows one; else the request waits (``Waiter``).
    private func open(
        _ key: BackendKey,
        forUpgrade: Bool,
        reusable: Bool,
        completion: @escaping (Result<BackendConnection, any Error>) -> Void
    ) {
        guard self.descriptors.take() else {
            let waiter = Waiter(
                key: key,
                forUpgrade: forUpgrade,
                reusable: reusable,
                deadline: .now() + self.connectTimeout,
                completion: completion
            )
            if self.waiting.isEmpty {
                // Once each time requests start waiting here, not a line per request.
                self.logger.warning(
                    "near the descriptor limit: backend requests wait for a connection",
                    metadata: ["p8.fd.limit": "\(self.descriptors.limit)"]
                )
            }
            self.waiting.append(waiter)
            self.scheduleWaitingRetry()
            return
        }
        self.openCounted(key, forUpgrade: forUpgrade, completion: completion)
    }

    /// Opens a connection whose descriptor the budget has counted already.
    private func openCounted(
        _ key: BackendKey,
        forUpgrade: Bool,
        completion: @escaping (Result<BackendConnection, any Error>) -> Void
    ) {
        let tlsContext: NIOSSLContext?
        do {
            tlsContext = key.tls ? try self.tlsContext(verifyingCertificates: key.verifyCertificate) : nil
        } catch {
            self.descriptors.give()
            completion(.failure(error))
            return
        }
        let descriptors = self.descriptors
        ClientBootstrap(group: self.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(self.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsContext, serverHostname: key.serverName)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(StatusLineSniffer())
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: forUpgrade ? .forwardBytes : .fireError,
                        enableOutboundHeaderValidation: true
                    )
                    try channel.pipeline.syncOperations.addHandler(BackendConnectionHandler())
                }
            }
            .connect(host: key.host, port: key.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): channel.closeFuture.whenComplete { _ in descriptors.give() }
                case .failure: descriptors.give()
                }
                completion(
                    result.flatMap { channel in
                        Result {
                            let operations = channel.pipeline.syncOperations
                            let handler = try operations.handler(type: BackendConnectionHandler.self)
                            // The pool lives as long as its event loop, so the closure may hold it strongly.
                            handler.onClose = { handler in self.connectionClosed(key, handler) }
                            return BackendConnection(
                                key: key,
                                channel: channel,
                                handler: handler,
                                statusLineSniffer: try operations.handler(type: StatusLineSniffer.self)
                            )
                        }
                    }
                )
            }
    }

    private func tlsContext(verifyingCertificates verify: Bool) throws -> NIOSSLContext {
        if let context = self.tlsContexts[verify] {
            return context
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if !verify {
            configuration.certificateVerification = .none
        }
        let context = try NIOSSLContext(configuration: configuration)
        self.tlsContexts[verify] = context
        return context
    }

    /// Returns a connection whose last exchange completed cleanly, for the next request to the same backend.
    func release(_ connection: BackendConnection) {
        self.eventLoop.assertInEventLoop()
        guard connection.isActive else { return }
        connection.delegate = nil
        connection.isReadPaused = false
        // A request waiting at the descriptor budget takes it at once.
        if let index = self.waiting.firstIndex(where: { $0.reusable && $0.key == connection.key }) {
            let waiter = self.waiting.remove(at: index)
            waiter.completion(.success(connection))
            return
        }
        var connections = self.idle[connection.key, default: []]
        guard connections.count < ProxyLimits.maxIdleBackendConnections else {
            connection.close()
            return
        }
        connections.append(connection)
        self.idle[connection.key] = connections
    }

    /// A connection closed: if it was idle, it is gone from the pool.
    private func connectionClosed(_ key: BackendKey, _ handler: BackendConnectionHandler) {
        guard var connections = self.idle[key] else { return }
        connections.removeAll { $0.handler === handler }
        self.idle[key] = connections.isEmpty ? nil : connections
    }

    /// While requests wait at the descriptor budget, looks every 20 ms whether a descriptor came free (any
    /// connection of the process closing gives one back), and fails those that waited past the connect timeout.
    private func scheduleWaitingRetry() {
        guard self.waitingRetry == nil else { return }
        self.waitingRetry = self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) {
            self.waitingRetry = nil
            self.serveWaiting()
        }
    }

    private func serveWaiting() {
        let now = NIODeadline.now()
        let expired = self.waiting.filter { $0.deadline <= now }
        self.waiting.removeAll { $0.deadline <= now }
        for waiter in expired {
            waiter.completion(.failure(DescriptorLimitReached()))
        }
        while !self.waiting.isEmpty, self.descriptors.take() {
            let waiter = self.waiting.removeFirst()
            self.openCounted(waiter.key, forUpgrade: waiter.forUpgrade, completion: waiter.completion)
        }
        if !self.waiting.isEmpty {
            self.scheduleWaitingRetry()
        }
    }

    /// How many idle connections the pool keeps, to every backend.
    var idleConnectionCount: Int {
        self.idle.values.reduce(0) { $0 + $1.count }
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        for connection in self.idle.values.joined() {
            connection.close()
        }
        self.idle = [:]
        self.waitingRetry?.cancel()
        self.waitingRetry = nil
        let waiting = self.waiting
        self.waiting = []
        for waiter in waiting {
            waiter.completion(.failure(DescriptorLimitReached()))
        }
    }

    /// A request for a connection that the descriptor budget holds back: it gets a connection released to the
    /// pool for its backend (unless it asked for a new one), or a new one once a descriptor comes free, or fails
    /// at its deadline (the connect timeout).
    private struct Waiter {
        let key: BackendKey
        let forUpgrade: Bool
        let reusable: Bool
        let deadline: NIODeadline
        let completion: (Result<BackendConnection, any Error>) -> Void
    }
}

@available(*, unavailable)
extension BackendConnectionPool: Sendable {}

/// A backend connection not opened: the process is near its descriptor limit (``DescriptorBudget``).
struct DescriptorLimitReached: Error, CustomStringConvertible {
    var description: String { "too many open connections: the process is near its descriptor limit" }
}
