import Foundation
import GRIP
import Glibc
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A client connection an earlier server handed over: its socket, and what it was doing.
package struct TakenOverConnection: Sendable {
    package var descriptor: CInt
    var connection: HandedOverConnection

    /// Reads a connection message of the hand-over socket; nil (the socket closed) when the payload does not
    /// parse.
    package static func decode(descriptor: CInt, payload: [UInt8]) -> TakenOverConnection? {
        guard let connection = try? JSONDecoder().decode(HandedOverConnection.self, from: Data(payload)) else {
            Glibc.close(descriptor)
            return nil
        }
        return TakenOverConnection(descriptor: descriptor, connection: connection)
    }

    /// Whether the connection is held (else idle), and a held one's mode, for the log.
    package var isHeld: Bool { self.connection.hold != nil }
}

/// What a hand-over did.
package struct HandoverSummary: Sendable, CustomStringConvertible {
    /// Connections handed over: held long-polls, held streams, idle keep-alive connections.
    package var longPolls = 0
    package var streams = 0
    package var idle = 0
    /// Connections that stay here and end as in any shutdown (TLS, WebSockets, requests in flight, clients that do
    /// not read).
    package var leftBehind = 0

    package var handedOver: Int { self.longPolls + self.streams + self.idle }

    package var description: String {
        "\(self.handedOver) handed over (\(self.longPolls) long-polls, \(self.streams) streams, \(self.idle) idle), "
            + "\(self.leftBehind) left to close"
    }
}

/// The restart without dropped connections (README "Restarts"), on both sides: the old server hands each client
/// connection it can over the hand-over socket; the new one takes them over once listening.
extension ProxyServer {
    /// How long the hand-over waits for requests in flight to become holds or finish before handing over what can be.
    static let handoverSettleTime = Duration.seconds(2)
    /// How long a connection may take to flush what it was sent before it is left out.
    static let handoverFlushTime = TimeAmount.seconds(2)

    /// Hands every client connection that can be to the new server over `socket`: stops accepting (new
    /// connections wait in the listen backlog for the new server), stops reading new requests, lets requests in
    /// flight settle for a moment, then ends each hold without a word to its client and passes the socket on.
    /// The connections that stay end as in any shutdown, which the caller starts next.
    package func handOver(over socket: HandoverSocket) async throws(HandoverError) -> HandoverSummary {
        for listener in self.listeners.withLock({ $0 }) {
            try? await listener.close()
        }
        let channels = self.clients.all
        for channel in channels {
            channel.eventLoop.execute {
                try? channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self).holdReadsForHandover()
            }
        }
        let clock = ContinuousClock()
        let settleBy = clock.now + Self.handoverSettleTime
        while clock.now < settleBy, await Self.unsettledCount(channels) > 0 {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let descriptors = SocketDescriptors.scan()
        var summary = HandoverSummary()
        var outgoing: [(descriptor: CInt, payload: [UInt8])] = []
        let encoder = JSONEncoder()
        let detaching = channels.map { Self.detach($0, descriptors: descriptors) }
        for detached in detaching {
            guard let (descriptor, connection) = try? await detached.get() ?? nil,
                let payload = try? encoder.encode(connection)
            else {
                summary.leftBehind += 1
                continue
            }
            switch connection.hold?.instruct.holdMode {
            case nil: summary.idle += 1
            case .stream: summary.streams += 1
            default: summary.longPolls += 1
            }
            outgoing.append((descriptor, Array(payload)))
        }
        defer {
            for message in outgoing {
                Glibc.close(message.descriptor)
            }
        }
        let messages = outgoing
        try await Self.blocking { () throws(HandoverError) in
            for message in messages {
                try socket.send(descriptor: message.descriptor, payload: message.payload)
            }
            try socket.sendEnd()
        }
        return summary
    }

    /// Continues the connections an earlier server handed over (once listening).
    func takeOverConnections(_ pools: BackendPools) {
        let connections = self.takenOver.withLock { taken in
            defer { taken = [] }
            return taken
        }
        guard !connections.isEmpty else { return }
        for taken in connections {
            let connection = taken.connection
            let adopted = ClientBootstrap(group: self.group)
                .channelOption(.maxMessagesPerRead, value: 16)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        _ = try self.initializeClient(channel, tls: nil, pools: pools)
                    }
                }
                .withConnectedSocket(taken.descriptor)
            let logger = self.logger
            adopted.whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.eventLoop.execute {
                        guard
                            let handler = try? channel.pipeline.syncOperations.handler(
                                type: ClientConnectionHandler.self
                            ),
                            handler.takeOver(connection)
                        else {
                            logger.info("a connection handed over has no route now: closed")
                            channel.close(promise: nil)
                            return
                        }
                    }
                case .failure(let error):
                    logger.warning("a connection handed over could not be taken over", metadata: ["error": "\(error)"])
                    Glibc.close(taken.descriptor)
                }
            }
        }
        self.logger.info(
            "connections of the previous server taken over",
            metadata: ["p8.connections": "\(connections.count)"]
        )
    }

    private static func unsettledCount(_ channels: [any Channel]) async -> Int {
        let answers = channels.map { channel in
            channel.eventLoop.submit {
                !channel.isActive
                    || ((try? channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self))?
                        .isHandoverSettled ?? true)
            }
        }
        var unsettled = 0
        for answer in answers where (try? await answer.get()) == false {
            unsettled += 1
        }
        return unsettled
    }

    /// Hands one connection over on its event loop: a duplicate of its socket and its description, once what it
    /// was sent is flushed; the channel is then closed (the socket lives on in the duplicate). Nil when it
    /// stays (it cannot be handed over, or does not flush in time).
    private static func detach(
        _ channel: any Channel,
        descriptors: [String: CInt]
    ) -> EventLoopFuture<(CInt, HandedOverConnection)?> {
        let eventLoop = channel.eventLoop
        guard let key = SocketDescriptors.key(local: channel.localAddress, remote: channel.remoteAddress),
            let descriptor = descriptors[key]
        else { return eventLoop.makeSucceededFuture(nil) }
        let promise = eventLoop.makePromise(of: (CInt, HandedOverConnection)?.self)
        eventLoop.execute {
            guard let handler = try? channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self) else {
                promise.succeed(nil)
                return
            }
            var decided = false
            let giveUp = eventLoop.assumeIsolated().scheduleTask(in: Self.handoverFlushTime) {
                decided = true
                handler.releaseReadsAfterHandover()
                promise.succeed(nil)
            }
            handler.handOver { connection in
                guard !decided else { return }
                decided = true
                giveUp.cancel()
                guard let connection else {
                    handler.releaseReadsAfterHandover()
                    promise.succeed(nil)
                    return
                }
                let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
                guard duplicate >= 0 else {
                    handler.releaseReadsAfterHandover()
                    promise.succeed(nil)
                    return
                }
                handler.detachForHandover()
                promise.succeed((duplicate, connection))
            }
        }
        return promise.futureResult
    }

    /// Runs blocking I/O on a thread of its own.
    private static func blocking(
        _ body: @escaping @Sendable () throws(HandoverError) -> Void
    ) async throws(HandoverError) {
        let result: Result<Void, HandoverError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                do throws(HandoverError) {
                    try body()
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        try result.get()
    }
}

/// This process's TCP sockets by their addresses: NIO does not tell a channel's descriptor, so the hand-over finds
/// each in `/proc/self/fd`.
enum SocketDescriptors {
    /// Every connected TCP socket's descriptor, by ``key(local:remote:)``.
    static func scan() -> [String: CInt] {
        var found: [String: CInt] = [:]
        guard let directory = opendir("/proc/self/fd") else { return found }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let descriptor = CInt(name) else { continue }
            var local = sockaddr_storage()
            var remote = sockaddr_storage()
            guard Self.address(of: descriptor, into: &local, getsockname),
                Self.address(of: descriptor, into: &remote, getpeername),
                let localText = Self.text(local), let remoteText = Self.text(remote)
            else { continue }
            found[localText + ">" + remoteText] = descriptor
        }
        return found
    }

    static func key(local: SocketAddress?, remote: SocketAddress?) -> String? {
        guard let local, let remote, let localIP = local.ipAddress, let localPort = local.port,
            let remoteIP = remote.ipAddress, let remotePort = remote.port
        else { return nil }
        return "\(localIP):\(localPort)>\(remoteIP):\(remotePort)"
    }

    private static func address(
        of descriptor: CInt,
        into storage: inout sockaddr_storage,
        _ call: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt
    ) -> Bool {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(descriptor, $0, &length) == 0 }
        }
    }

    private static func string(_ characters: [CChar]) -> String {
        String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func text(_ storage: sockaddr_storage) -> String? {
        var storage = storage
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch CInt(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var ip = address.pointee.sin_addr
                    guard inet_ntop(AF_INET, &ip, &buffer, socklen_t(buffer.count)) != nil else { return nil }
                    return "\(Self.string(buffer)):\(UInt16(bigEndian: address.pointee.sin_port))"
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var ip = address.pointee.sin6_addr
                    guard inet_ntop(AF_INET6, &ip, &buffer, socklen_t(buffer.count)) != nil else { return nil }
                    return "\(Self.string(buffer)):\(UInt16(bigEndian: address.pointee.sin6_port))"
                }
            }
        default:
            return nil
        }
    }
}
