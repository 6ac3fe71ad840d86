import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A client connection an earlier server handed over: its socket, and what it was doing (JSON, decoded on the
/// event loop that takes it over: the receiving thread only collects).
package struct TakenOverConnection: Sendable {
    package var descriptor: CInt
    package var payload: [UInt8]

    package init(descriptor: CInt, payload: [UInt8]) {
        self.descriptor = descriptor
        self.payload = payload
    }
}

/// The new server's side of a restart without dropped connections: it continues each connection the old one passed.
extension ProxyServer {
    /// Continues the connections an earlier server handed over (once listening).
    func takeOverConnections(_ pools: BackendPools) {
        let connections = self.takenOver.withLock { taken in
            defer { taken = [] }
            return taken
        }
        guard !connections.isEmpty else { return }
        let logger = self.logger
        for taken in connections {
            let eventLoop = self.group.next()
            eventLoop.execute {
                guard let connection = try? JSONDecoder().decode(HandedOverConnection.self, from: Data(taken.payload))
                else {
                    logger.warning("a connection handed over has a description that does not parse: closed")
                    Glibc.close(taken.descriptor)
                    return
                }
                guard connection.publishAPI != true else {
                    if let control = self.control {
                        control.adopt(taken.descriptor, on: eventLoop)
                    } else {
                        Glibc.close(taken.descriptor)
                    }
                    return
                }
                self.takeOver(taken.descriptor, connection, on: eventLoop, pools: pools)
            }
        }
        self.logger.info(
            "connections of the previous server taken over",
            metadata: ["p8.connections": "\(connections.count)"]
        )
    }

    /// Adopts one connection's socket on `eventLoop` and continues what it was doing.
    private func takeOver(
        _ descriptor: CInt,
        _ connection: HandedOverConnection,
        on eventLoop: any EventLoop,
        pools: BackendPools
    ) {
        let descriptors = self.engine.descriptors
        descriptors.takeRegardless()
        let adopted = ClientBootstrap(group: eventLoop)
            .channelOption(.maxMessagesPerRead, value: 16)
            .channelOption(.recvAllocator, value: Self.clientReceiveBuffers)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    _ = try self.initializeClient(channel, tls: nil, pools: pools)
                }
            }
            .withConnectedSocket(descriptor)
        let logger = self.logger
        adopted.whenComplete { result in
            switch result {
            case .success(let channel):
                channel.closeFuture.whenComplete { _ in descriptors.give() }
                channel.eventLoop.execute {
                    guard
                        let handler = try? channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self),
                        handler.takeOver(connection)
                    else {
                        logger.info("a connection handed over has no route now: closed")
                        channel.close(promise: nil)
                        return
                    }
                }
            case .failure(let error):
                logger.warning("a connection handed over could not be taken over", metadata: ["error": "\(error)"])
                Glibc.close(descriptor)
                descriptors.give()
            }
        }
    }
}
