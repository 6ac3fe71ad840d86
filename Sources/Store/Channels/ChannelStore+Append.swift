package import Foundation
import GRDB
import GRIP
import Logging
import Synchronization

// Group commit, leader/follower style, without a background task.
//
// An append (or hold write) puts a waiter in `commitQueue` and suspends on its continuation. The caller that finds
// no commit running starts one on GRDB's writer queue (`asyncWriteWithoutTransaction`): the job takes every waiter
// queued so far, writes them all in one transaction, and resumes their continuations after COMMIT. While appends
// keep coming, the next batch is a new job on the writer queue, so concurrent appenders share transactions and
// other writes (retention, hold maintenance) still get their turn between two batches. When recent batches had
// several waiters, a job first waits up to `maxBatchDelay` (about a millisecond) on a condition for as many
// waiters as the recent peak (a decaying estimate of the number of concurrent appenders), or for `maxBatchItems`
// items; a lone appender never waits (once a burst has decayed). The jobs run on the writer's own serial queue,
// never on the cooperative pool, and stop by themselves when nothing is queued: nothing outlives the calls that
// need it, so there is no `Task {}` and no service to run.

/// The waiters of the next commit.
struct CommitQueue: Sendable {
    var waiters: [CommitWaiter] = []
    var itemCount = 0
    var isCommitting = false
    /// An estimate of how many appenders are concurrent: the recent peak of waiters per batch, decaying by 1/8
    /// (at least 1) per batch.
    var concurrency = 1
    /// Whether the commit job waits on `batchCondition` for more waiters.
    var isWaitingForBatch = false

    /// Whether as many waiters as there are concurrent appenders are queued, or enough items.
    func isBatchComplete(maxItems: Int) -> Bool {
        self.waiters.count >= self.concurrency || self.itemCount >= maxItems
    }
}

/// One caller's share of a commit.
struct CommitWaiter: Sendable {
    var items: [NewItem]
    var holdUpserts: [HoldRecord] = []
    var holdPositions: [HoldPositions] = []
    var holdDeletes: [String] = []
    /// Releases the reordering buffer's items received at or before this time (milliseconds since 1970).
    var releasesItemsReceivedThrough: Int64?
    /// `nil` for fire-and-forget writes (``ChannelStore/enqueueHolds(upserts:deletes:)``).
    var completion: CommitCompletion?
}

extension ChannelStore {
    /// Appends items to their channels' logs and calls `completion` once they are committed: once, on the store's
    /// writer queue (at once, on a read-only store). Callers in a task await ``ChannelLogStore/append(_:)``;
    /// the control API's event loops call this, saving the hops of resuming a task and coming back to the loop.
    ///
    /// Concurrent calls share transactions (group commit). Each new item gets the next sequence of its channel,
    /// in the channel's `prev-id` chain order: an item whose `prev-id` names an item not yet in the log is
    /// committed to the reordering buffer (its result says ``AppendResult/isWaiting``) and enters the log once
    /// that item does, or `message_wait` after it was received (see ``releaseWaitingItems(now:)``). Either way it
    /// is durable when `completion` is called. An item without an id is given `"{epoch}-{sequence}"`. An item
    /// whose `(channel, id)` is still retained or waiting (or appears earlier in the same call) is not appended
    /// again: its result carries the original sequence and `isDuplicate`. Once submitted, the append completes
    /// with the commit. What each commit did reaches ``observeCommits(_:)``'s observer.
    ///
    /// - Parameter items: The items, in order; items of one channel get increasing sequences in this order.
    /// - Parameter completion: One result per item, in the same order; or ``StoreError/Code/readOnly`` on a
    ///   read-only store, or the SQLite error that failed the commit (then none of the batch's items were written).
    package func append(_ items: [NewItem], completion: @escaping CommitCompletion) {
        do {
            try self.checkWritable()
        } catch {
            completion(.failure(error))
            return
        }
        if items.isEmpty {
            completion(.success([]))
            return
        }
        self.submit(CommitWaiter(items: items, completion: completion))
    }

    /// Sets the one observer of what commits append: the items that enter channel logs, and counts.
    ///
    /// It is called on the store's writer queue after each commit that appended items, with the logged items in
    /// log order, and in commit order: before the next commit starts and before the appenders resume. Keep it
    /// short and non-blocking (hand the items to a queue): the next commit waits for it.
    package func observeCommits(_ observer: @escaping @Sendable (CommittedBatch) -> Void) {
        self.commitObserver.withLock { $0 = CommitObserver(receive: observer) }
    }

    /// The sequence of the newest item this process logged on a channel (0 if none): what a subscriber that
    /// starts now has missed, as opposed to what will reach it through ``observeCommits(_:)``.
    package func lastLoggedSequence(channel: String) -> Int64 {
        self.channelCache.withLock { $0[channel]?.lastSequence ?? 0 }
    }

    /// Whether the reordering buffer holds items waiting for a predecessor.
    package var hasWaitingItems: Bool {
        self.waitingChannels.withLock { !$0.isEmpty }
    }

    /// Moves into the log the waiting items whose `message_wait` is over (received `reorderingWaitMilliseconds`
    /// before `now` or earlier), each followed by the waiting items it unblocks. Returns once committed.
    package func releaseWaitingItems(now: Date = Date()) async throws {
        try self.checkWritable()
        guard self.hasWaitingItems else { return }
        let receivedThrough = now.storeMilliseconds - Int64(self.configuration.reorderingWaitMilliseconds)
        _ = try await withCheckedThrowingContinuation { continuation in
            self.submit(
                CommitWaiter(
                    items: [],
                    releasesItemsReceivedThrough: receivedThrough,
                    completion: { continuation.resume(with: $0) }
                )
            )
        }
    }

    /// Forgets every channel's chain position (`recover`, grip-spec §5.5): the next item of each channel enters the
    /// log whatever its `prev-id`.
    package func forgetChainPositions() async throws {
        try self.checkWritable()
        try await self.pool.writeWithoutTransaction { db in
            try db.execute(sql: "UPDATE channel SET chainLastId = NULL WHERE chainLastId IS NOT NULL")
            self.channelCache.withLock { cache in
                for name in cache.keys {
                    cache[name]?.chainLastId = nil
                }
            }
        }
    }

    /// Queues a waiter, and starts the commit loop if none runs.
    func submit(_ waiter: CommitWaiter) {
        let maxBatchItems = self.maxBatchItems
        let (startsLoop, wakesBatch) = self.commitQueue.withLock { queue in
            queue.waiters.append(waiter)
            queue.itemCount += waiter.items.count
            if queue.isCommitting {
                // Wake the waiting job only once its batch is complete: one wake-up per batch, not one per waiter.
                return (false, queue.isWaitingForBatch && queue.isBatchComplete(maxItems: maxBatchItems))
            }
            queue.isCommitting = true
            return (true, false)
        }
        if wakesBatch {
            self.batchCondition.lock()
            self.batchCondition.signal()
            self.batchCondition.unlock()
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

    /// Waits briefly, on `batchCondition`, for as many waiters as there are concurrent appenders, when there are
    /// several.
    private func waitForBatch() {
        let delay = self.maxBatchDelay.components
        let deadline = Date().addingTimeInterval(Double(delay.seconds) + Double(delay.attoseconds) * 1e-18)
        self.batchCondition.lock()
        defer { self.batchCondition.unlock() }
        while true {
            let ready = self.commitQueue.withLock { queue in
                let ready = queue.concurrency <= 1 || queue.isBatchComplete(maxItems: self.maxBatchItems)
                queue.isWaitingForBatch = !ready
                return ready
            }
            if ready || !self.batchCondition.wait(until: deadline) {
                self.commitQueue.withLock { $0.isWaitingForBatch = false }
                return
            }
        }
    }

    /// Writes one batch in one transaction, then updates caches, hands the logged items to the observer and
    /// resumes the waiters.
    private func commit(_ batch: [CommitWaiter], _ db: Database) {
        var writer = BatchWriter(epoch: self.epoch, receivedAt: Date().storeMilliseconds) { name in
            self.channelCache.withLock { $0[name] }
        }
        var results: [[AppendResult]] = []
        results.reserveCapacity(batch.count)
        do {
            try db.inTransaction(.immediate) {
                try self.reloadWaitingChannelsIfNeeded(db)
                for waiter in batch {
                    var waiterResults: [AppendResult] = []
                    waiterResults.reserveCapacity(waiter.items.count)
                    for item in waiter.items {
                        waiterResults.append(try writer.insert(item, db))
                    }
                    if let receivedThrough = waiter.releasesItemsReceivedThrough {
                        for name in self.waitingChannels.withLock({ $0 }) {
                            _ = try writer.releaseExpired(
                                channel: name,
                                receivedThrough: receivedThrough,
                                db
                            )
                        }
                    }
                    results.append(waiterResults)
                    try HoldWriter.write(
                        upserts: waiter.holdUpserts,
                        positions: waiter.holdPositions,
                        deletes: waiter.holdDeletes,
                        db
                    )
                }
                try writer.updateChannels(db)
                return .commit
            }
        } catch {
            // Forget the cached channels: if another writer appended to this file (there should be one writer
            // per database), the next batch reloads them (and the waiting items) instead of failing again.
            self.channelCache.withLock { $0 = [:] }
            self.needsWaitingReload.withLock { $0 = true }
            for waiter in batch {
                if let completion = waiter.completion {
                    completion(.failure(error))
                } else {
                    self.logger.info("hold records not written", metadata: ["error": "\(error)"])
                }
            }
            return
        }
        // The tails first: a hold that starts once ``lastLoggedSequence(channel:)`` names an item must find it when
        // it reads the log (the live copy of it is dropped), else it misses it (seen in the churn soak: an SSE
        // client resuming in between got 384, then 386).
        if !writer.logged.isEmpty {
            self.tails.append(writer.logged.map(\.stored))
        }
        self.channelCache.withLock { cache in
            for (name, channel) in writer.touched {
                cache[name] = CachedChannel(
                    id: channel.id,
                    lastSequence: channel.lastSequence,
                    chainLastId: channel.chainLastId,
                    waiting: channel.waiting
                )
            }
        }
        self.waitingChannels.withLock { waiting in
            for (name, channel) in writer.touched {
                if channel.waiting.isEmpty {
                    waiting.remove(name)
                } else {
                    waiting.insert(name)
                }
            }
        }
        let itemResults = results.joined()
        if !writer.logged.isEmpty || !itemResults.isEmpty {
            let duplicates = itemResults.count { $0.isDuplicate }
            self.commitObserver.withLock { $0 }?.receive(
                CommittedBatch(
                    logged: writer.logged,
                    newItems: itemResults.count - duplicates,
                    waitingItems: itemResults.count { $0.isWaiting && !$0.isDuplicate },
                    duplicates: duplicates
                )
            )
        }
        for (waiter, waiterResults) in zip(batch, results) {
            waiter.completion?(.success(waiterResults))
        }
    }

    /// After a failed commit, reads again the channels that have waiting items, so that their `message_wait`
    /// runs out even if nothing is published to them again.
    private func reloadWaitingChannelsIfNeeded(_ db: Database) throws {
        guard self.needsWaitingReload.withLock({ $0 }) else { return }
        try self.loadWaitingChannels(db)
        self.needsWaitingReload.withLock { $0 = false }
    }

    /// Puts the channels that have items in the reordering buffer in the writer's cache (when the store opens,
    /// the buffer's state is the database's).
    func loadWaitingChannels(_ db: Database) throws {
        let channels = try WaitingItems.loadWaitingChannels(db)
        self.channelCache.withLock { cache in
            cache.merge(channels) { _, loaded in loaded }
        }
        self.waitingChannels.withLock { $0 = Set(channels.keys) }
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
