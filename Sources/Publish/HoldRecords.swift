import Foundation
import Logging
import Store
import Synchronization

/// A session with a held-request record that follows where its client is.
protocol RecordedSession: AnyObject, Sendable {
    var id: String { get }
    /// The record as it stands now; nil once the session ended. The session's record is up to date after it.
    func currentRecord() -> HoldRecord?
}

/// Writes the held-request records, off the hot path (with the store's next group commit), and keeps them
/// following each client's position: a session whose position moved is rewritten at most about once per
/// ``refreshInterval``, all moved sessions in one write. `p8ctl held` reports from them how far each client is
/// behind, and a server that takes a client over continues from them.
///
/// Every write goes through one lock, so that a session's position write can never follow the deletion of its
/// record (which would leave a record of a hold that ended).
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

    /// `session`'s position moved: its record is rewritten within ``refreshInterval``. Sessions call it once per
    /// write of their record (when it turns stale), not per item.
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

    /// Rewrites the records of the sessions that moved.
    func refresh() {
        self.state.withLock { state in
            let moved = state.moved.values
            state.moved = [:]
            state.refreshScheduled = false
            self.enqueue(upserts: moved.compactMap { $0.currentRecord() }, deletes: [])
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
