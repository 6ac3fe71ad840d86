import Foundation
import Logging
import Store
import Synchronization

/// A session with a held-request record that follows where its client is.
protocol RecordedSession: AnyObject, Sendable {
    var id: String { get }
    /// Where the client is now; nil once the session ended. The session's record is up to date after it.
    func currentPositions() -> HoldPositions?
}

/// Writes the held-request records, off the hot path (with the store's next group commit), and keeps them
/// following each client's position: the positions of a session whose position moved are rewritten at most about
/// once per ``refreshInterval``, those of all moved sessions in one write. `p8ctl held` reports from them how far each client is
/// behind, and a server that takes a client over continues from them.
///
/// Record writes and deletes go through one lock, so that a write for a session can never follow the deletion of
/// its record (which would leave a record of a hold that ended); a position update of a deleted record changes
/// nothing.
final class HoldRecords: Sendable {
    /// How far behind the delivered positions a record may be.
    static let refreshInterval = Duration.seconds(1)

    private struct State {
        /// Sessions whose position moved since their record was written.
        var moved: [String: any RecordedSession] = [:]
        var refreshScheduled = false
    }

    private let store: any ChannelLogStore
    private let logger: Logger
    private let state = Mutex(State())

    init(store: any ChannelLogStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Writes `record` (a hold that started, or a WebSocket whose subscriptions changed).
    func write(_ record: HoldRecord) {
        self.state.withLock { _ in
            self.enqueue(upserts: [record], deletes: [])
        }
    }

    /// Deletes the record of a session that ended.
    func delete(id: String) {
        self.state.withLock { state in
            state.moved[id] = nil
            self.enqueue(upserts: [], deletes: [id])
        }
    }

    /// `session`'s position moved: its record's positions are rewritten within ``refreshInterval``. Sessions call
    /// it once per write of their positions (when they turn stale), not per item.
    func positionsMoved(_ session: some RecordedSession) {
        let schedule = self.state.withLock { state -> Bool in
            state.moved[session.id] = session
            defer { state.refreshScheduled = true }
            return !state.refreshScheduled
        }
        if schedule {
            Task {
                try? await Task.sleep(for: Self.refreshInterval)
                self.refresh()
            }
        }
    }

    /// Rewrites the positions of the sessions that moved.
    func refresh() {
        let moved = self.state.withLock { state in
            defer {
                state.moved = [:]
                state.refreshScheduled = false
            }
            return state.moved.values
        }
        do {
            try self.store.enqueueHoldPositions(moved.compactMap { $0.currentPositions() })
        } catch {
            self.logger.debug("hold positions not written", metadata: ["error": "\(error)"])
        }
    }

    /// A failed write costs only the record.
    private func enqueue(upserts: [HoldRecord], deletes: [String]) {
        do {
            try self.store.enqueueHolds(upserts: upserts, deletes: deletes)
        } catch {
            self.logger.debug("hold record not written", metadata: ["error": "\(error)"])
        }
    }
}
