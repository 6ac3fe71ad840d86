package import Foundation
package import GRIP

/// What the hub, the control API, `Runner` and the shared Store tests use of a store, whichever database holds it:
/// ``ChannelStore`` (SQLite, one node) or ``PostgreSQLStore`` (several nodes sharing one PostgreSQL database).
///
/// Both give the same semantics: per-channel sequences in `prev-id` chain order, one epoch per database,
/// `(channel, id)` de-duplication within retention, a durable reordering buffer, retention, and hold records.
package protocol ChannelLogStore: AnyObject, Sendable {
    /// The database's epoch, returned with every read.
    var epoch: String { get }
    /// Where the database is, for diagnostics: the SQLite file, or the PostgreSQL URL without its password.
    var location: String { get }
    /// The sequence of the newest item of a channel this process has handed to the commit observer (0 if none):
    /// what a subscriber that starts now has missed, as opposed to what will reach it through the observer.
    func lastLoggedSequence(channel: String) -> Int64
    /// Whether the reordering buffer may hold items waiting for a predecessor.
    var hasWaitingItems: Bool { get }
    /// Queues hold writes for the next commit without waiting for it.
    func enqueueHolds(upserts: [HoldRecord], deletes: [String]) throws
    /// Queues updates of live holds' channel positions for the next commit without waiting for it.
    func enqueueHoldPositions(_ positions: [HoldPositions]) throws
    /// Appends items and calls `completion` once they are committed (see ``ChannelStore/append(_:completion:)``).
    func append(_ items: [NewItem], completion: @escaping CommitCompletion)
    /// Sets the one observer of what this process's commits append.
    func observeCommits(_ observer: @escaping @Sendable (CommittedBatch) -> Void)
    /// Reads a channel's items after a cursor.
    func read(channel: String, after cursor: Cursor, limit: Int) async throws -> ReadResult
    /// The oldest retained item of a channel.
    func oldest(channel: String) async throws -> StoredItem?
    /// The newest item of a channel.
    func newest(channel: String) async throws -> StoredItem?
    /// Every channel whose name starts with `prefix`, by name.
    func channelSummaries(prefix: String) async throws -> [ChannelSummary]
    /// Moves into the log the waiting items whose `message_wait` is over.
    func releaseWaitingItems(now: Date) async throws
    /// Forgets every channel's chain position.
    func forgetChainPositions() async throws
    /// Applies retention once.
    @discardableResult
    func trim(now: Date) async throws -> TrimSummary
    /// Writes hold records in the next commit and returns once committed.
    func recordHolds(upserts: [HoldRecord], deletes: [String]) async throws
    /// The hold records, of one channel or all.
    func holds(channel: String?) async throws -> [HoldRecord]
    /// Marks the records of other instances as orphaned and returns them.
    func markOrphans(currentInstance: String, now: Date) async throws -> [HoldRecord]
    /// Deletes the orphaned records.
    @discardableResult
    func deleteOrphans() async throws -> Int

    /// Removes the oldest items of one channel, or of every channel, by an operator's rule (`p8ctl trim`).
    func trim(channel: String?, rule: TrimRule) async throws -> [ChannelTrimResult]

    // What the status page and the metrics endpoint show.

    /// The `[store]` configuration (retention, `message_wait`).
    var configuration: StoreConfiguration { get }
    /// Where reads were answered from (SQLite's in-memory tail, or the database: always, on PostgreSQL).
    var readSources: ReadSources { get }
    /// Retained bytes and items, and channels, of the whole database.
    func levels() async throws -> StoreLevels
    /// The live holds of `instance` by mode (`response`, `stream`, `webSocket`).
    func holdCounts(instance: String) async throws -> [String: Int]
    /// The `limit` live holds of `instance` furthest behind one of their channels.
    func holdsFurthestBehind(instance: String, limit: Int) async throws -> [HoldLag]
}

/// How an append learns its commit's outcome: called once, on whatever thread the store commits on (keep it short:
/// hand the result to an event loop or a continuation).
package typealias CommitCompletion = @Sendable (Result<[AppendResult], any Error>) -> Void

extension ChannelLogStore {
    /// Appends items and returns once they are committed: ``append(_:completion:)``, awaited. Not cancellable:
    /// once submitted, it completes with the commit.
    package func append(_ items: [NewItem]) async throws -> [AppendResult] {
        try await withCheckedThrowingContinuation { continuation in
            self.append(items) { continuation.resume(with: $0) }
        }
    }
}

extension ChannelStore: ChannelLogStore {
    package var location: String { self.path }
}
