import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to backends, one pool per event loop: a client connection only ever uses
/// backend connections on its own loop, so no request hops between threads and the pool needs no lock.
final class BackendConnectionPool {
    private let eventLoop: any EventLoop
    private let connectTimeout: TimeAmount
    private var idle: [BackendKey: [BackendConnection]] = [:]

    init(eventLoop: any EventLoop, connectTimeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.connectTimeout = connectTimeout
    }

    /// Calls `completion` on this loop with an idle connection to `key` if one is still open, else a new one.
    func acquire(_ key: BackendKey, completion: @escaping (Result<BackendConnection, any Error>) -> Void) {
        self.eventLoop.assertInEventLoop()
        while var connections = self.idle[key], let connection = connections.popLast() {
            self.idle[key] = connections.isEmpty ? nil : connections
            if connection.isActive {
                connection.handler.onClose = nil
                completion(.success(connection))
                return
            }
        }
        self.connect(key, completion: completion)
    }

    /// Opens a new connection, never a pooled one (used to retry after a reused connection failed).
    func connect(_ key: BackendKey, completion: @escaping (Result<BackendConnection, any Error>) -> Void) {
        ClientBootstrap(group: self.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(self.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StatusLineSniffer())
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .fireError,
                        enableOutboundHeaderValidation: true
                    )
                    try channel.pipeline.syncOperations.addHandler(BackendConnectionHandler())
                }
            }
            .connect(host: key.host, port: key.port)
            .assumeIsolated()
            .whenComplete { result in
                completion(
                    result.flatMap { channel in
                        Result {
                            let operations = channel.pipeline.syncOperations
                            return BackendConnection(
                                key: key,
                                channel: channel,
                                handler: try operations.handler(type: BackendConnectionHandler.self),
                                statusLineSniffer: try operations.handler(type: StatusLineSniffer.self)
                            )
                        }
                    }
                )
            }
    }

    /// Returns a connection whose last exchange completed cleanly, for the next request to the same backend.
    func release(_ connection: BackendConnection) {
        self.eventLoop.assertInEventLoop()
        guard connection.isActive else { return }
        connection.delegate = nil
        connection.isReadPaused = false
        var connections = self.idle[connection.key, default: []]
        guard connections.count < ProxyLimits.maxIdleBackendConnections else {
            connection.close()
            return
        }
        connections.append(connection)
        self.idle[connection.key] = connections
        connection.handler.onClose = { [weak self, weak connection] in
            guard let self, let connection else { return }
            self.idle[connection.key]?.removeAll { $0 === connection }
        }
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        for connection in self.idle.values.joined() {
            connection.close()
        }
        self.idle = [:]
    }
}

@available(*, unavailable)
extension BackendConnectionPool: Sendable {}
