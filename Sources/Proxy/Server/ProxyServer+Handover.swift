import Foundation
import GRIP
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

/// What a hand-over did.
package struct HandoverSummary: Sendable, CustomStringConvertible {
    /// Connections handed over: held long-polls, held streams, WebSocket-over-HTTP, idle keep-alive connections.
    package var longPolls = 0
    package var streams = 0
    package var webSockets = 0
    package var idle = 0
    /// Connections that stay here and end as in any shutdown (TLS, WebSockets, requests in flight, clients that do
    /// not read).
    package var leftBehind = 0
    /// Seconds spent detaching the connections (the first pass over all of them, and in all), and sending them.
    package var firstPassSeconds = 0.0
    package var detachSeconds = 0.0
    package var sendSeconds = 0.0

    package var handedOver: Int { self.longPolls + self.streams + self.webSockets + self.idle }

    package var description: String {
        "\(self.handedOver) handed over (\(self.longPolls) long-polls, \(self.streams) streams, "
            + "\(self.webSockets) WebSockets, \(self.idle) idle), \(self.leftBehind) left to close; detached in "
            + String(
                format: "%.3f s (first pass %.3f s), sent in %.3f s",
                self.detachSeconds,
                self.firstPassSeconds,
                self.sendSeconds
            )
    }
}

/// The restart without dropped connections (README "Restarts"), on both sides: the old server hands each client
/// connection it can over the hand-over socket; the new one takes them over once listening.
extension ProxyServer {
    /// How long, after a first pass over every connection, the hand-over waits for requests in flight to become
    /// holds or finish.
    static let handoverSettleTime = Duration.seconds(3)
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
                let pipeline = channel.pipeline.syncOperations
                if let handler = try? pipeline.handler(type: ClientConnectionHandler.self) {
                    handler.holdReadsForHandover()
                } else {
                    try? pipeline.handler(type: WebSocketFrameHandler.self).holdReadsForHandover()
                }
            }
        }
        let clock = ContinuousClock()
        let started = clock.now
        let descriptors = SocketDescriptors.scan()
        var summary = HandoverSummary()
        var outgoing: [(descriptor: CInt, payload: [UInt8])] = []
        // Connections busy with a request are tried again until it settles (a hold, or an answered request), for
        // a moment after the first pass at most; reads are held, so no new request starts meanwhile.
        var settleBy: ContinuousClock.Instant?
        var pending = channels
        while !pending.isEmpty {
            let final = settleBy.map { clock.now >= $0 } ?? false
            let attempts = pending.map { Self.detach($0, descriptors: descriptors, final: final) }
            var busy: [any Channel] = []
            for (channel, attempt) in zip(pending, attempts) {
                switch try? await attempt.get() {
                case .handedOver(let descriptor, let connection, let payload)?:
                    switch connection.hold?.instruct.holdMode {
                    case nil where connection.webSocket != nil: summary.webSockets += 1
                    case nil: summary.idle += 1
                    case .stream: summary.streams += 1
                    default: summary.longPolls += 1
                    }
                    outgoing.append((descriptor, payload))
                case .busy?:
                    busy.append(channel)
                case .stays?, nil:
                    summary.leftBehind += 1
                }
            }
            if settleBy == nil {
                summary.firstPassSeconds = (clock.now - started).seconds
                settleBy = clock.now + Self.handoverSettleTime
            }
            pending = busy
            if !pending.isEmpty {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        summary.detachSeconds = (clock.now - started).seconds
        let sending = clock.now
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
        summary.sendSeconds = (clock.now - sending).seconds
        return summary
    }

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
        let adopted = ClientBootstrap(group: eventLoop)
            .channelOption(.maxMessagesPerRead, value: 16)
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
            }
        }
    }

    /// What an attempt at one connection came to.
    private enum Detached {
        /// A duplicate of its socket, and its description (and as JSON); the channel is closed.
        case handedOver(CInt, HandedOverConnection, [UInt8])
        case busy
        case stays
    }

    /// Tries to hand one connection over on its event loop: a duplicate of its socket and its description, once
    /// what it was sent is flushed; the channel is then closed (the socket lives on in the duplicate). A `final`
    /// attempt leaves a busy connection here, reading again.
    private static func detach(
        _ channel: any Channel,
        descriptors: [String: CInt],
        final: Bool
    ) -> EventLoopFuture<Detached> {
        let eventLoop = channel.eventLoop
        guard let key = SocketDescriptors.key(local: channel.localAddress, remote: channel.remoteAddress),
            let descriptor = descriptors[key]
        else { return eventLoop.makeSucceededFuture(.stays) }
        let promise = eventLoop.makePromise(of: Detached.self)
        eventLoop.execute {
            guard let handler = try? channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self) else {
                Self.detachWebSocket(channel, descriptor: descriptor, final: final, promise)
                return
            }
            var decided = false
            let stay = { (outcome: Detached) in
                if case .busy = outcome, !final {
                    promise.succeed(.busy)
                    return
                }
                handler.releaseReadsAfterHandover()
                promise.succeed(.stays)
            }
            let giveUp = eventLoop.assumeIsolated().scheduleTask(in: Self.handoverFlushTime) {
                decided = true
                stay(.stays)
            }
            handler.handOver { outcome in
                guard !decided else { return }
                decided = true
                giveUp.cancel()
                switch outcome {
                case .busy:
                    stay(.busy)
                case .stays:
                    stay(.stays)
                case .handedOver(let connection):
                    // Encoded here: the event loops share the work.
                    guard let payload = try? JSONEncoder().encode(connection) else {
                        stay(.stays)
                        return
                    }
                    let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
                    guard duplicate >= 0 else {
                        stay(.stays)
                        return
                    }
                    handler.detachForHandover()
                    promise.succeed(.handedOver(duplicate, connection, Array(payload)))
                }
            }
        }
        return promise.futureResult
    }

    /// ``detach(_:descriptors:final:)`` for an upgraded connection: a WebSocket-over-HTTP between backend
    /// requests is handed over; passthrough WebSockets stay (their backend side is a second connection).
    private static func detachWebSocket(
        _ channel: any Channel,
        descriptor: CInt,
        final: Bool,
        _ promise: EventLoopPromise<Detached>
    ) {
        let pipeline = channel.pipeline.syncOperations
        guard let frames = try? pipeline.handler(type: WebSocketFrameHandler.self),
            let counter = try? pipeline.handler(type: ClientReadCounter.self),
            let webSocket = frames.delegate as? WebSocketOverHTTP
        else {
            promise.succeed(.stays)
            return
        }
        guard let record = webSocket.handOver() else {
            if !final && webSocket.machine.session.phase == .open {
                promise.succeed(.busy)
            } else {
                frames.releaseReadsAfterHandover()
                promise.succeed(.stays)
            }
            return
        }
        // The messages the session sent before it ended are queued on this event loop: written first.
        channel.eventLoop.assumeIsolated().execute {
            Self.finishDetachingWebSocket(frames, counter, record, descriptor: descriptor, promise)
        }
    }

    private static func finishDetachingWebSocket(
        _ frames: WebSocketFrameHandler,
        _ counter: ClientReadCounter,
        _ record: WebSocketHandoverRecord,
        descriptor: CInt,
        _ promise: EventLoopPromise<Detached>
    ) {
        counter.afterWrites { written in
            let connection = HandedOverConnection(webSocket: record)
            let payload = try? JSONEncoder().encode(connection)
            let duplicate = written && payload != nil ? fcntl(descriptor, F_DUPFD_CLOEXEC, 0) : -1
            guard duplicate >= 0, let payload else {
                // Its GRIP side has ended: it closes with the shutdown, and its client resumes.
                frames.releaseReadsAfterHandover()
                promise.succeed(.stays)
                return
            }
            frames.detachForHandover()
            promise.succeed(.handedOver(duplicate, connection, Array(payload)))
        }
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

extension Duration {
    /// The duration in seconds.
    package var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
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

    /// `ip:port` of an IPv4 or IPv6 address, as NIO's `SocketAddress` spells it (through `inet_ntop`).
    private static func text(_ storage: sockaddr_storage) -> String? {
        // sockaddr_in: family (2 bytes), port (2, network order), address (4); sockaddr_in6: family, port,
        // flow info (4), address (16).
        let (family, addressOffset): (CInt, Int)
        switch CInt(storage.ss_family) {
        case AF_INET: (family, addressOffset) = (AF_INET, 4)
        case AF_INET6: (family, addressOffset) = (AF_INET6, 8)
        default: return nil
        }
        return withUnsafeBytes(of: storage) { raw -> String? in
            let port = UInt16(raw[2]) << 8 | UInt16(raw[3])
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            guard inet_ntop(family, raw.baseAddress! + addressOffset, &buffer, socklen_t(buffer.count)) != nil else {
                return nil
            }
            return "\(Self.string(buffer)):\(port)"
        }
    }
}
