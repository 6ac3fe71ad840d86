import NIOCore
import NIOHTTP1
import Synchronization

/// The control API's open connections, so that a graceful shutdown need not wait for clients: connections
/// still waiting for a request are closed at once, those with a request in progress get a grace period.
final class ControlConnections: Sendable {
    typealias AsyncConnection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    private struct State {
        /// Each open connection, and whether its request head has arrived.
        var open: [ObjectIdentifier: (channel: any Channel, busy: Bool)] = [:]
        /// Accepted connections not yet handed to a task that serves them.
        var unserved: [ObjectIdentifier: AsyncConnection] = [:]
        /// The server no longer serves anything: every connection accepted from now on is closed at once.
        var drained = false
        var shuttingDown = false
    }

    private let state = Mutex(State())

    /// Tracks `channel` until it closes; closes it at once when shutdown has begun.
    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let accepted = self.state.withLock { state -> Bool in
            guard !state.shuttingDown else { return false }
            state.open[id] = (channel, false)
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { _ in
            _ = self.state.withLock { $0.open.removeValue(forKey: id) }
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
            return !state.shuttingDown
        }
    }

    /// Closes idle connections now and the others after `grace`.
    func shutDown(grace: TimeAmount) {
        let (idle, busy) = self.state.withLock { state in
            state.shuttingDown = true
            let connections = Array(state.open.values)
            return (connections.filter { !$0.busy }.map(\.channel), connections.filter(\.busy).map(\.channel))
        }
        for channel in idle {
            channel.close(promise: nil)
        }
        for channel in busy {
            _ = channel.eventLoop.scheduleTask(in: grace) {
                channel.close(promise: nil)
            }
        }
    }
}
