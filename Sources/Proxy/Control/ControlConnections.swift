import NIOCore
import Synchronization

/// The control API's open connections, so that a graceful shutdown need not wait for clients: connections
/// still waiting for a request are closed at once, those with a request in progress get a grace period.
final class ControlConnections: Sendable {
    private struct State {
        /// Each open connection, and whether its request head has arrived.
        var open: [ObjectIdentifier: (channel: any Channel, busy: Bool)] = [:]
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

    /// Notes that `channel` has a request in progress.
    func requestStarted(on channel: any Channel) {
        self.state.withLock { $0.open[ObjectIdentifier(channel)]?.busy = true }
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
