import Foundation
import GRDB
import Logging
import Synchronization

// Group commit, leader/follower style, without a background task.
//
// An append (or hold write) puts a waiter in `commitQueue` and suspends on its continuation. The caller that finds
// no commit running starts one on GRDB's writer queue (`asyncWriteWithoutTransaction`): the job takes every waiter
// queued so far, writes them all in one transaction, and resumes their continuations after COMMIT. While appends
// keep coming, the next batch is a new job on the writer queue, so concurrent appenders share transactions and
// other writes (retention, hold maintenance) still get their turn between two batches. When recent batches had
// several waiters, a job first waits up to `maxBatchDelay` (about a millisecond) for as many waiters as the recent
// peak (a decaying estimate of the number of concurrent appenders), or for `maxBatchItems` items; a lone appender
// never waits (once a burst has decayed). The jobs run on the writer's own serial queue, never on the cooperative
// pool, and stop by themselves when nothing is queued: nothing outlives the calls that need it, so there is no
// `Task {}` and no service to run.

/// The waiters of the next commit.
struct CommitQueue: Sendable {
    var waiters: [CommitWaiter] = []
    var itemCount = 0
    var isCommitting = false
    /// An estimate of how many appenders are concurrent: the recent peak of waiters per batch, decaying by 1/8
    /// (at least 1) per batch.
    var concurrency = 1
}

/// One caller's share of a commit.
struct CommitWaiter: Sendable {
    var items: [NewItem]
    var holdUpserts: [HoldRecord] = []
    var holdDeletes: [String] = []
    /// `nil` for fire-and-forget hold writes (``ChannelStore/enqueueHolds(upserts:deletes:)``).
    var continuation: CheckedContinuation<[AppendResult], any Error>?
    /// Called on the writer queue right after the commit, before `continuation` resumes.
    var onCommit: (@Sendable ([AppendResult]) -> Void)?
}

extension ChannelStore {
    /// Appends items to their channels' logs and returns once they are committed.
    ///
    /// Concurrent calls share transactions (group commit). Each new item gets the next sequence of its channel.
    /// An item without an id is given `"{epoch}-{sequence}"`. An item whose `(channel, id)` is still retained
    /// (or appears earlier in the same call) is not appended again: its result carries the original sequence
    /// and `isDuplicate`. The call is not cancellable: once submitted, it completes with the commit.
    ///
    /// - Parameter items: The items, in order; items of one channel get increasing sequences in this order.
    /// - Returns: One result per item, in the same order.
    /// - Throws: ``StoreError/Code/readOnly`` on a read-only store, or the SQLite error that failed the commit
    ///   (then none of the batch's items were written).
    package func append(_ items: [NewItem]) async throws -> [AppendResult] {
        try await self.append(items, onCommit: nil)
    }

    /// Appends items like ``append(_:)``, and calls `onCommit` with the results as soon as they are committed.
    ///
    /// `onCommit` runs on the store's writer queue, in commit order: for two appends that touch the same channel,
    /// the one committed first has its `onCommit` called first, and before the other's commit starts. That is
    /// what lets the publish side deliver each channel's items in log order. Keep it short and non-blocking: the
    /// next commit waits for it.
    package func append(
        _ items: [NewItem],
        onCommit: (@Sendable ([AppendResult]) -> Void)?
    ) async throws -> [AppendResult] {
        try self.checkWritable()
        if items.isEmpty {
            return []
        }
        return try await withCheckedThrowingContinuation { continuation in
            self.submit(CommitWaiter(items: items, continuation: continuation, onCommit: onCommit))
        }
    }

    /// Queues a waiter, and starts the commit loop if none runs.
    func submit(_ waiter: CommitWaiter) {
        let startsLoop = self.commitQueue.withLock { queue in
            queue.waiters.append(waiter)
            queue.itemCount += waiter.items.count
            if queue.isCommitting {
                return false
            }
            queue.isCommitting = true
            return true
        }
        if startsLoop {
            self.pool.asyncWriteWithoutTransaction { db in
                self.commitLoop(db)
            }
        }
    }

    /// Commits the queued waiters as one batch; runs on the writer queue.
    ///
    /// While more waiters are queued, the next batch is committed by a new job on the writer queue rather than in
    /// a loop here, so that other writes queued meanwhile (retention, hold maintenance) run between two batches
    /// instead of waiting for appends to stop.
    private func commitLoop(_ db: Database) {
        self.waitForBatch()
        let batch = self.commitQueue.withLock { queue -> [CommitWaiter] in
            if queue.waiters.isEmpty {
                queue.isCommitting = false
                return []
            }
            let batch = queue.waiters
            queue.waiters = []
            queue.itemCount = 0
            queue.concurrency = max(batch.count, queue.concurrency - max(1, queue.concurrency / 8))
            return batch
        }
        if batch.isEmpty {
            return
        }
        self.commit(batch, db)
        let continues = self.commitQueue.withLock { queue in
            if queue.waiters.isEmpty && queue.concurrency <= 1 {
                queue.isCommitting = false
                return false
            }
            return true
        }
        if continues {
            self.pool.asyncWriteWithoutTransaction { db in
                self.commitLoop(db)
            }
        }
    }

    /// Waits briefly for as many waiters as there are concurrent appenders, when there are several.
    private func waitForBatch() {
        let start = ContinuousClock.now
        while true {
            let ready = self.commitQueue.withLock { queue in
                queue.concurrency <= 1 || queue.waiters.count >= queue.concurrency
                    || queue.itemCount >= self.maxBatchItems
            }
            if ready || ContinuousClock.now - start >= self.maxBatchDelay {
                return
            }
            usleep(20)
        }
    }

    /// Writes one batch in one transaction, then updates caches and resumes the waiters.
    private func commit(_ batch: [CommitWaiter], _ db: Database) {
        var writer = BatchWriter(epoch: self.epoch) { name in self.channelCache.withLock { $0[name] } }
        var results: [[AppendResult]] = []
        results.reserveCapacity(batch.count)
        do {
            try db.inTransaction(.immediate) {
                for waiter in batch {
                    var waiterResults: [AppendResult] = []
                    waiterResults.reserveCapacity(waiter.items.count)
                    for item in waiter.items {
                        waiterResults.append(try writer.insert(item, db))
                    }
                    results.append(waiterResults)
                    try HoldWriter.write(upserts: waiter.holdUpserts, deletes: waiter.holdDeletes, db)
                }
                try writer.updateChannels(db)
                return .commit
            }
        } catch {
            // Forget the cached sequences: if another writer appended to this file (there should be one writer
            // per database), the next batch reloads them instead of failing again.
            self.channelCache.withLock { $0 = [:] }
            for waiter in batch {
                if let continuation = waiter.continuation {
                    continuation.resume(throwing: error)
                } else {
                    self.logger.info("hold records not written", metadata: ["error": "\(error)"])
                }
            }
            return
        }
        self.channelCache.withLock { cache in
            for (name, channel) in writer.touched {
                cache[name] = CachedChannel(id: channel.id, lastSequence: channel.lastSequence)
            }
        }
        self.tails.append(writer.appended)
        for (waiter, waiterResults) in zip(batch, results) {
            waiter.onCommit?(waiterResults)
            waiter.continuation?.resume(returning: waiterResults)
        }
    }
}

/// The writes of one batch: sequences, de-duplication, and what to update afterwards.
private struct BatchWriter {
    struct Touched {
        var id: Int64
        var lastSequence: Int64
        var addedItems = 0
        var addedBytes = 0
    }

    /// The statements of the hot path, prepared once per batch (GRDB's statement cache hashes the SQL per call).
    struct Statements {
        private var insertStatement: Statement?
        private var publisherLookupStatement: Statement?

        mutating func insert(_ db: Database) throws -> Statement {
            if let statement = self.insertStatement {
                return statement
            }
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO item (channelId, sequence, itemId, isAssignedId, prevId, formats, meta, size, publishedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            self.insertStatement = statement
            return statement
        }

        mutating func publisherLookup(_ db: Database) throws -> Statement {
            if let statement = self.publisherLookupStatement {
                return statement
            }
            let statement = try db.cachedStatement(
                sql: "SELECT sequence FROM item WHERE channelId = ? AND itemId = ? AND isAssignedId = 0"
            )
            self.publisherLookupStatement = statement
            return statement
        }
    }

    let epochDash: String
    let cached: (String) -> CachedChannel?
    var statements = Statements()
    var touched: [String: Touched] = [:]
    var appended: [StoredItem] = []

    init(epoch: String, cached: @escaping (String) -> CachedChannel?) {
        self.epochDash = epoch + "-"
        self.cached = cached
    }

    mutating func insert(_ item: NewItem, _ db: Database) throws -> AppendResult {
        var channel = try self.channel(named: item.channel, db)
        if let id = item.id, let existing = try ItemLookup.sequence(ofID: id, channelID: channel.id, db) {
            return AppendResult(channel: item.channel, sequence: existing, id: id, isDuplicate: true)
        }
        let sequence = channel.lastSequence + 1
        var id = item.id ?? self.epochDash + String(sequence)
        if item.id == nil {
            let lookup = try self.statements.publisherLookup(db)
            if try Int64.fetchOne(lookup, arguments: [channel.id, id]) != nil {
                // A publisher chose this id for another item: assign a different one.
                id += "-\(UUID().uuidString.prefix(8).lowercased())"
            }
        }
        let publishedAt = item.publishedAt.storeMilliseconds
        try self.statements.insert(db).execute(arguments: [
            channel.id, sequence, id, item.id == nil, item.prevId, item.formats, item.meta, item.size, publishedAt,
        ])
        channel.lastSequence = sequence
        channel.addedItems += 1
        channel.addedBytes += item.size
        self.touched[item.channel] = channel
        self.appended.append(
            StoredItem(
                channel: item.channel,
                sequence: sequence,
                id: id,
                prevId: item.prevId,
                formats: item.formats,
                meta: item.meta,
                size: item.size,
                publishedAt: Date(storeMilliseconds: publishedAt)
            )
        )
        return AppendResult(channel: item.channel, sequence: sequence, id: id, isDuplicate: false)
    }

    mutating func updateChannels(_ db: Database) throws {
        let update = try db.cachedStatement(
            sql: """
                UPDATE channel SET lastSequence = ?, itemCount = itemCount + ?, byteCount = byteCount + ?
                WHERE id = ?
                """
        )
        for channel in self.touched.values where channel.addedItems > 0 {
            try update.execute(arguments: [channel.lastSequence, channel.addedItems, channel.addedBytes, channel.id])
        }
    }

    private mutating func channel(named name: String, _ db: Database) throws -> Touched {
        if let touched = self.touched[name] {
            return touched
        }
        if let cached = self.cached(name) {
            return Touched(id: cached.id, lastSequence: cached.lastSequence)
        }
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT id, lastSequence FROM channel WHERE name = ?"),
            arguments: [name]
        )
        if let row {
            return Touched(id: row["id"], lastSequence: row["lastSequence"])
        }
        try db.execute(sql: "INSERT INTO channel (name) VALUES (?)", arguments: [name])
        return Touched(id: db.lastInsertedRowID, lastSequence: 0)
    }
}

/// Finds items by id: publisher ids through the partial index, assigned ids (`"{epoch}-{sequence}[-suffix]"`)
/// through their sequence.
enum ItemLookup {
    /// The sequence of the retained item with this id in the channel, if any.
    static func sequence(ofID id: String, channelID: Int64, _ db: Database) throws -> Int64? {
        if let sequence = try self.publisherSequence(ofID: id, channelID: channelID, db) {
            return sequence
        }
        guard let (_, sequence) = self.parseAssigned(id) else {
            return nil
        }
        return try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT sequence FROM item WHERE channelId = ? AND sequence = ? AND itemId = ?"),
            arguments: [channelID, sequence, id]
        )
    }

    /// The sequence of the retained item to which a publisher gave this id, if any.
    static func publisherSequence(ofID id: String, channelID: Int64, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(
            db.cachedStatement(
                sql: "SELECT sequence FROM item WHERE channelId = ? AND itemId = ? AND isAssignedId = 0"
            ),
            arguments: [channelID, id]
        )
    }

    /// The epoch and sequence of an id of the assigned form, if `id` has that form.
    static func parseAssigned(_ id: String) -> (epoch: Substring, sequence: Int64)? {
        let parts = id.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].count == 16, parts[0].allSatisfy(\.isHexDigit),
            let sequence = Int64(parts[1]), sequence > 0
        else {
            return nil
        }
        return (parts[0], sequence)
    }
}
