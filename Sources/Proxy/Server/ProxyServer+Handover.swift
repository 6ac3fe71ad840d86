import Foundation
import GRIP
import Glibc
import NIOCore
import Synchronization

/// What a hand-over did.
package struct HandoverSummary: Sendable, CustomStringConvertible {
    /// Connections handed over: held long-polls, held streams, WebSocket-over-HTTP, idle keep-alive connections.
    package var longPolls = 0
    package var streams = 0
    package var webSockets = 0
    package var idle = 0
    /// Idle keep-alive connections to the publish API.
    package var publishAPI = 0
    /// Connections whose request, still waiting for its backend, the new server sends again.
    package var replayed = 0
    /// Connections that stay here and end as in any shutdown, by why: still busy with a request when the settling
    /// time ended, a client that did not take what it was sent in time, or a kind that never goes over (TLS, a
    /// passthrough WebSocket, a JSON-P or CORS response, pipelined requests).
    package var leftBusy = 0
    package var leftUnflushed = 0
    package var leftNotTransferable = 0
    /// Seconds spent detaching the connections (the first pass over all of them, and in all), and sending them.
    package var firstPassSeconds = 0.0
    package var detachSeconds = 0.0
    package var sendSeconds = 0.0

    package var handedOver: Int {
        self.longPolls + self.streams + self.webSockets + self.idle + self.publishAPI + self.replayed
    }

    package var leftBehind: Int {
        self.leftBusy + self.leftUnflushed + self.leftNotTransferable
    }

    package var description: String {
        "\(self.handedOver) handed over (\(self.longPolls) long-polls, \(self.streams) streams, "
            + "\(self.webSockets) WebSockets, \(self.idle) idle, \(self.publishAPI) publishing, "
            + "\(self.replayed) sent again), "
            + "\(self.leftBehind) left to close (\(self.leftBusy) busy, \(self.leftUnflushed) not reading, "
            + "\(self.leftNotTransferable) of a kind that stays); detached in "
            + String(
                format: "%.3f s (first pass %.3f s), sent in %.3f s",
                self.detachSeconds,
                self.firstPassSeconds,
                self.sendSeconds
            )
    }
}

/// The restart without dropped connections (README "Restarts"), the old server's side: it hands each client
/// connection it can over the hand-over socket (the new server's side is ProxyServer+TakeOver.swift).
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
        var summary = HandoverSummary()
        var outgoing: [(descriptor: CInt, payload: [UInt8])] = []
        var descriptors = SocketDescriptors.scan()
        let budget = self.engine.descriptors
        await Self.detachAll(channels, descriptors: descriptors, budget: budget, into: &summary, &outgoing)
        // The publish API served publishes until now (the holds just passed resume after them); its idle
        // connections go last, each once its request in flight is answered.
        if let control = self.control {
            let publishing = await control.stopForHandover()
            // Only a connection accepted since the scan needs another (one still open keeps its descriptor).
            let unscanned = publishing.contains { channel in
                SocketDescriptors.key(local: channel.localAddress, remote: channel.remoteAddress)
                    .map { descriptors[$0] == nil } ?? false
            }
            if unscanned {
                descriptors = SocketDescriptors.scan()
            }
            await Self.detachAll(publishing, descriptors: descriptors, budget: budget, into: &summary, &outgoing)
        }
        summary.detachSeconds = (clock.now - started).seconds
        let sending = clock.now
        defer {
            for message in outgoing {
                Glibc.close(message.descriptor)
                budget.give()
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

    /// Detaches what it can of `channels`: connections busy with a request are tried again until it settles (a
    /// hold, or an answered request), for ``handoverSettleTime`` after the first pass at most; reads are held, so
    /// no new request starts meanwhile.
    private static func detachAll(
        _ channels: [any Channel],
        descriptors: [String: CInt],
        budget: DescriptorBudget,
        into summary: inout HandoverSummary,
        _ outgoing: inout [(descriptor: CInt, payload: [UInt8])]
    ) async {
        let clock = ContinuousClock()
        let started = clock.now
        var settleBy: ContinuousClock.Instant?
        var pending = channels
        while !pending.isEmpty {
            let final = settleBy.map { clock.now >= $0 } ?? false
            let attempts = pending.map { Self.detach($0, descriptors: descriptors, budget: budget, final: final) }
            var busy: [any Channel] = []
            for (channel, attempt) in zip(pending, attempts) {
                switch try? await attempt.get() {
                case .handedOver(let descriptor, let connection, let payload)?:
                    switch connection.hold?.instruct.holdMode {
                    case nil where connection.publishAPI == true: summary.publishAPI += 1
                    case nil where connection.replay != nil || connection.webSocket?.pending != nil:
                        summary.replayed += 1
                    case nil where connection.webSocket != nil: summary.webSockets += 1
                    case nil: summary.idle += 1
                    case .stream: summary.streams += 1
                    default: summary.longPolls += 1
                    }
                    outgoing.append((descriptor, payload))
                case .busy?:
                    busy.append(channel)
                case .stays(.busy)?:
                    summary.leftBusy += 1
                case .stays(.unflushed)?:
                    summary.leftUnflushed += 1
                case .stays(.notTransferable)?, nil:
                    summary.leftNotTransferable += 1
                case .gone?:
                    break
                }
            }
            if settleBy == nil {
                summary.firstPassSeconds += (clock.now - started).seconds
                settleBy = clock.now + Self.handoverSettleTime
            }
            pending = busy
            if !pending.isEmpty {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// What an attempt at one connection came to.
    private enum Detached {
        /// A duplicate of its socket, and its description (and as JSON); the channel is closed.
        case handedOver(CInt, HandedOverConnection, [UInt8])
        case busy
        case stays(LeftBehind)
        /// It closed meanwhile (its client left, or its last request asked for a close).
        case gone
    }

    /// Why a connection stays (``HandoverSummary``).
    private enum LeftBehind {
        case busy
        case unflushed
        case notTransferable
    }

    /// Tries to hand one connection over on its event loop: a duplicate of its socket and its description, once
    /// what it was sent is flushed; the channel is then closed (the socket lives on in the duplicate). A `final`
    /// attempt leaves a busy connection here, reading again.
    private static func detach(
        _ channel: any Channel,
        descriptors: [String: CInt],
        budget: DescriptorBudget,
        final: Bool
    ) -> EventLoopFuture<Detached> {
        let eventLoop = channel.eventLoop
        guard let key = SocketDescriptors.key(local: channel.localAddress, remote: channel.remoteAddress),
            let descriptor = descriptors[key]
        else { return eventLoop.makeSucceededFuture(.stays(.notTransferable)) }
        let promise = eventLoop.makePromise(of: Detached.self)
        eventLoop.execute {
            guard channel.isActive else {
                promise.succeed(.gone)
                return
            }
            let pipeline = channel.pipeline.syncOperations
            guard let counter = try? pipeline.handler(type: ClientReadCounter.self) else {
                promise.succeed(.stays(.notTransferable))
                return
            }
            let passing = Passing(
                channel: channel,
                counter: counter,
                descriptor: descriptor,
                budget: budget,
                final: final
            )
            if let handler = try? pipeline.handler(type: ClientConnectionHandler.self) {
                handler.handOver(replaying: final) { outcome in
                    passing.complete(
                        outcome,
                        release: handler.releaseReadsAfterHandover,
                        detach: handler.detachForHandover,
                        promise
                    )
                }
            } else if let control = try? pipeline.handler(type: ControlRequestHandler.self) {
                passing.complete(
                    control.handOver(),
                    release: control.releaseReadsAfterHandover,
                    detach: control.detachForHandover,
                    promise
                )
            } else if let frames = try? pipeline.handler(type: WebSocketFrameHandler.self),
                let webSocket = frames.delegate as? WebSocketOverHTTP
            {
                passing.complete(
                    webSocket.handOver(replaying: final),
                    release: frames.releaseReadsAfterHandover,
                    detach: frames.detachForHandover,
                    promise
                )
            } else {
                // A passthrough WebSocket: its backend side is a second connection.
                promise.succeed(.stays(.notTransferable))
            }
        }
        return promise.futureResult
    }

    /// The last step of ``detach(_:descriptors:final:)``, the same for HTTP connections and WebSockets.
    private struct Passing {
        let channel: any Channel
        let counter: ClientReadCounter
        let descriptor: CInt
        let budget: DescriptorBudget
        let final: Bool

        /// Carries out `outcome`: a connection to hand over is flushed first (everything decided for it before is
        /// queued on this event loop, ahead of the flush marker; a client that does not take it within
        /// ``handoverFlushTime`` stays), encoded here (the event loops share the work), its socket duplicated,
        /// and this side `detach`ed. A connection that stays reads again (`release`).
        func complete(
            _ outcome: HandoverOutcome,
            release: @escaping () -> Void,
            detach: @escaping () -> Void,
            _ promise: EventLoopPromise<Detached>
        ) {
            let connection: HandedOverConnection
            switch outcome {
            case .busy where !self.final:
                promise.succeed(.busy)
                return
            case .busy:
                release()
                promise.succeed(.stays(.busy))
                return
            case .stays:
                release()
                promise.succeed(.stays(.notTransferable))
                return
            case .handedOver(let handedOver):
                connection = handedOver
            }
            let eventLoop = self.channel.eventLoop.assumeIsolated()
            // A request abandoned for the new server to send (again) has no answer coming here: its connection
            // closes (the client asks again), it does not wait for the shutdown.
            let stay = { [channel] (reason: LeftBehind) in
                if connection.replay != nil || connection.webSocket?.pending != nil {
                    channel.close(promise: nil)
                } else {
                    release()
                }
                promise.succeed(.stays(reason))
            }
            var decided = false
            let giveUp = eventLoop.scheduleTask(in: ProxyServer.handoverFlushTime) {
                decided = true
                stay(.unflushed)
            }
            let (counter, descriptor, budget) = (self.counter, self.descriptor, self.budget)
            // Holding reads stops the next read, not one the channel had asked for already: bytes read while this
            // waits for the flush would be lost with this side of the connection, so it then stays.
            let readsAtDecision = counter.reads
            eventLoop.execute {
                counter.afterWrites { written in
                    guard !decided else { return }
                    decided = true
                    giveUp.cancel()
                    guard written else {
                        stay(.unflushed)
                        return
                    }
                    guard counter.reads == readsAtDecision, let payload = try? JSONEncoder().encode(connection) else {
                        stay(.busy)
                        return
                    }
                    let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
                    guard duplicate >= 0 else {
                        stay(.notTransferable)
                        return
                    }
                    // Counted until sent and closed: the channel's own count ends as it closes.
                    budget.takeRegardless()
                    detach()
                    promise.succeed(.handedOver(duplicate, connection, Array(payload)))
                }
            }
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
