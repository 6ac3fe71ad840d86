import NIOCore
import NIOHTTP1
import Synchronization

/// The control API's open connections, so that a graceful shutdown need not wait for clients: keep-alive
/// connections waiting for their next request are closed at once, those with a request in progress get a grace
/// period, and new ones get a moment for their first request (a publisher that connected just before the
/// shutdown, say during a restart, has its request on the way: it is served, not dropped).
final class ControlConnections: Sendable {
    typealias AsyncConnection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    private struct State {
        /// Each open connection, whether its request head has arrived, and whether it has been answered before.
        var open: [ObjectIdentifier: (channel: any Channel, busy: Bool, served: Bool)] = [:]
        /// Accepted connections not yet handed to a task that serves them.
        var unserved: [ObjectIdentifier: AsyncConnection] = [:]
        /// The server no longer serves anything: every connection accepted from now on is closed at once.
        var drained = false
        var shuttingDown = false
    }

    private let state = Mutex(State())

    /// How long a connection accepted around a shutdown has to start its first request.
    static let firstRequestWait = TimeAmount.seconds(2)

    /// Tracks `channel` until it closes; once shutdown has begun, it has ``firstRequestWait`` to start a request.
    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let shuttingDown = self.state.withLock { state -> Bool in
            state.open[id] = (channel, false, false)
            return state.shuttingDown
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLock { $0.open.removeValue(forKey: id) }
        }
        if shuttingDown {
            self.closeUnlessBusy(channel, after: Self.firstRequestWait)
        }
    }

    /// Closes `channel` after `delay` unless a request is in progress then (which closes it when answered), or no
    /// task serves it yet (the one that will gives it `delay` again, ``takeUnserved()``).
    private func closeUnlessBusy(_ channel: any Channel, after delay: TimeAmount) {
        let id = ObjectIdentifier(channel)
        _ = channel.eventLoop.scheduleTask(in: delay) {
            let idle = self.state.withLock { state in state.open[id]?.busy == false && state.unserved[id] == nil }
            if idle {
                channel.close(promise: nil)
            }
        }
    }

    /// Keeps `connection` until a task serves it (``serving(_:)``) or the server drains it
    /// (``closeUnserved()``). An `NIOAsyncChannel` released unused is a fatal error in NIO, and the server's
    /// stream of accepted connections drops the ones still in flight when it ends (shutdown, cancellation).
    func retain(_ connection: AsyncConnection) {
        let kept = self.state.withLock { state -> Bool in
            guard !state.drained else { return false }
            state.unserved[ObjectIdentifier(connection.channel)] = connection
            return true
        }
        if !kept {
            Self.close(connection)
        }
    }

    /// Closes a connection that will not be served, finishing its writer as NIO requires.
    static func close(_ connection: AsyncConnection) {
        Task.detached {
            try? await connection.executeThenClose { _, _ in }
        }
    }

    /// Notes that a task serves `channel` now.
    func serving(_ channel: any Channel) {
        _ = self.state.withLock { $0.unserved.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Closes the accepted connections that no task served, and every one accepted from now on.
    func closeUnserved() {
        let unserved = self.state.withLock { state in
            state.drained = true
            defer { state.unserved = [:] }
            return Array(state.unserved.values)
        }
        for connection in unserved {
            Self.close(connection)
        }
    }

    /// The accepted connections that no task served yet, now the caller's to serve.
    func takeUnserved() -> [AsyncConnection] {
        let taken = self.state.withLock { state in
            defer { state.unserved = [:] }
            return Array(state.unserved.values)
        }
        for connection in taken {
            self.closeUnlessBusy(connection.channel, after: Self.firstRequestWait)
        }
        return taken
    }

    /// Notes that `channel` has a request in progress.
    func requestStarted(on channel: any Channel) {
        self.state.withLock { $0.open[ObjectIdentifier(channel)]?.busy = true }
    }

    /// Whether graceful shutdown has begun.
    var isShuttingDown: Bool {
        self.state.withLock(\.shuttingDown)
    }

    /// Notes that `channel`'s request has been served; returns whether the connection may stay open for another
    /// (false once shutdown has begun).
    func requestFinished(on channel: any Channel) -> Bool {
        self.state.withLock { state in
            state.open[ObjectIdentifier(channel)]?.busy = false
            state.open[ObjectIdentifier(channel)]?.served = true
            return !state.shuttingDown
        }
    }

    /// Closes idle keep-alive connections now, new ones without a request after ``firstRequestWait``, and the
    /// others after `grace`.
    func shutDown(grace: TimeAmount) {
        let connections = self.state.withLock { state in
            state.shuttingDown = true
            return Array(state.open.values)
        }
        let busy = connections.filter(\.busy).map(\.channel)
        for connection in connections where !connection.busy {
            if connection.served {
                connection.channel.close(promise: nil)
            } else {
                self.closeUnlessBusy(connection.channel, after: Self.firstRequestWait)
            }
        }
        for channel in busy {
            _ = channel.eventLoop.scheduleTask(in: grace) {
                channel.close(promise: nil)
            }
        }
    }
}
