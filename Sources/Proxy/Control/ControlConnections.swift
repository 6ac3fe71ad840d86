import NIOCore
import Synchronization

/// The control API's open connections, so that a graceful shutdown need not wait for clients: keep-alive
/// connections waiting for their next request are closed at once, those with a request in progress get a grace
/// period, and new ones get a moment for their first request (a publisher that connected just before the
/// shutdown, say during a restart, has its request on the way: it is served, not dropped).
final class ControlConnections: Sendable {
    /// An open connection, whether a request is in progress on it, and whether it has been answered before.
    private typealias OpenConnection = (channel: any Channel, busy: Bool, served: Bool)

    private struct State {
        var open: [ObjectIdentifier: OpenConnection] = [:]
        var shuttingDown = false
        /// Resumed once shutdown has begun and every connection has closed.
        var closedWaiters: [CheckedContinuation<Void, Never>] = []
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
            let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.open.removeValue(forKey: id)
                return Self.takeWaitersIfDone(&state)
            }
            for waiter in waiters {
                waiter.resume()
            }
        }
        if shuttingDown {
            self.closeUnlessBusy(channel, after: Self.firstRequestWait)
        }
    }

    /// Closes `channel` after `delay` unless a request is in progress then (which closes it when answered).
    private func closeUnlessBusy(_ channel: any Channel, after delay: TimeAmount) {
        let id = ObjectIdentifier(channel)
        _ = channel.eventLoop.scheduleTask(in: delay) {
            if self.state.withLock({ $0.open[id]?.busy == false }) {
                channel.close(promise: nil)
            }
        }
    }

    /// Notes that `channel` has a request in progress.
    func requestStarted(on channel: any Channel) {
        self.state.withLock { $0.open[ObjectIdentifier(channel)]?.busy = true }
    }

    /// Every open connection.
    var all: [any Channel] {
        self.state.withLock { $0.open.values.map(\.channel) }
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
    /// others after `grace`. Only the first call does anything.
    func shutDown(grace: TimeAmount) {
        let (connections, waiters) = self.state.withLock {
            state -> ([OpenConnection], [CheckedContinuation<Void, Never>]) in
            if state.shuttingDown {
                return ([], [])
            }
            state.shuttingDown = true
            return (Array(state.open.values), Self.takeWaitersIfDone(&state))
        }
        for waiter in waiters {
            waiter.resume()
        }
        for connection in connections {
            let channel = connection.channel
            if connection.busy {
                _ = channel.eventLoop.scheduleTask(in: grace) {
                    channel.close(promise: nil)
                }
            } else if connection.served {
                channel.close(promise: nil)
            } else {
                self.closeUnlessBusy(channel, after: Self.firstRequestWait)
            }
        }
    }

    /// Closes every connection now (the server's task was cancelled).
    func closeAll() {
        let connections = self.state.withLock { state in
            state.shuttingDown = true
            return Array(state.open.values)
        }
        for connection in connections {
            connection.channel.close(promise: nil)
        }
    }

    /// Returns once shutdown has begun and every connection has closed.
    func allClosed() async {
        await withCheckedContinuation { continuation in
            let done = self.state.withLock { state -> Bool in
                if state.shuttingDown && state.open.isEmpty {
                    return true
                }
                state.closedWaiters.append(continuation)
                return false
            }
            if done {
                continuation.resume()
            }
        }
    }

    private static func takeWaitersIfDone(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        guard state.shuttingDown && state.open.isEmpty else { return [] }
        defer { state.closedWaiters = [] }
        return state.closedWaiters
    }
}
