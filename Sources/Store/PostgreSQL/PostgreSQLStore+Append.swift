package import Foundation
import GRIP
import Logging
import PostgresNIO
import Synchronization

/// The appends and hold writes waiting for the next PostgreSQL commit, and whether a commit loop runs.
struct PostgreSQLCommitQueue: Sendable {
    var waiters: [PostgreSQLCommitWaiter] = []
    var isCommitting = false
}

/// One caller's share of a PostgreSQL commit.
struct PostgreSQLCommitWaiter: Sendable {
    var items: [NewItem]
    var holdUpserts: [HoldRecord] = []
    var holdPositions: [HoldPositions] = []
    var holdDeletes: [String] = []
    var releasesItemsReceivedThrough: Int64?
    /// `nil` for fire-and-forget hold writes.
    var completion: CommitCompletion?
}

extension PostgreSQLStore {
    /// Appends items and calls `completion` once they are committed, with the semantics of
    /// ``ChannelStore/append(_:completion:)``; several nodes appending to one channel produce one chain order,
    /// since each transaction holds the channel's row lock.
    package func append(_ items: [NewItem], completion: @escaping CommitCompletion) {
        if items.isEmpty {
            completion(.success([]))
            return
        }
        self.submit(PostgreSQLCommitWaiter(items: items, completion: completion))
    }

    /// Moves into the log the waiting items (of any node) whose `message_wait` is over.
    package func releaseWaitingItems(now: Date = Date()) async throws {
        let receivedThrough = now.storeMilliseconds - Int64(self.configuration.reorderingWaitMilliseconds)
        _ = try await withCheckedThrowingContinuation { continuation in
            self.submit(
                PostgreSQLCommitWaiter(
                    items: [],
                    releasesItemsReceivedThrough: receivedThrough,
                    completion: { continuation.resume(with: $0) }
                )
            )
        }
    }

    /// Forgets every channel's chain position.
    package func forgetChainPositions() async throws {
        _ = try await Self.describingErrors(url: self.url) {
            try await self.client.query(
                "UPDATE channel SET chain_last_id = NULL WHERE chain_last_id IS NOT NULL",
                logger: self.logger
            )
        }
    }

    /// Queues a waiter for the next commit. While the server is lost, appends fail at once (see
    /// PostgreSQLStore+Availability.swift) and fire-and-forget hold writes wait, queued, for it to answer again.
    func submit(_ waiter: PostgreSQLCommitWaiter) {
        let lost = self.lostServerError
        if let lost, let completion = waiter.completion {
            completion(.failure(lost))
            return
        }
        let startsLoop = self.commitQueue.withLock { queue in
            queue.waiters.append(waiter)
            if queue.waiters.count > Self.maxQueuedWhileLost {
                queue.waiters.removeFirst()
            }
            if queue.isCommitting || lost != nil {
                return false
            }
            queue.isCommitting = true
            return true
        }
        if startsLoop {
            Task { await self.commitLoop() }
        }
    }

    /// Fire-and-forget hold writes kept at most while the server is lost (the oldest are dropped past it).
    static let maxQueuedWhileLost = 10_000

    /// Starts the commit loop for what queued up while the server was lost.
    func resumeCommits() {
        let startsLoop = self.commitQueue.withLock { queue in
            if queue.isCommitting || queue.waiters.isEmpty {
                return false
            }
            queue.isCommitting = true
            return true
        }
        if startsLoop {
            Task { await self.commitLoop() }
        }
    }

    /// Commits batch after batch while waiters queue up: those that arrive during a transaction share the next.
    private func commitLoop() async {
        while true {
            let lost = self.lostServerError
            let (batch, refused) = self.commitQueue.withLock {
                queue -> ([PostgreSQLCommitWaiter], [PostgreSQLCommitWaiter]) in
                if lost != nil {
                    // Appends queued before the server was found lost fail now; hold writes wait for it.
                    let refused = queue.waiters.filter { $0.completion != nil }
                    queue.waiters.removeAll { $0.completion != nil }
                    queue.isCommitting = false
                    return ([], refused)
                }
                if queue.waiters.isEmpty {
                    queue.isCommitting = false
                    return ([], [])
                }
                defer { queue.waiters = [] }
                return (queue.waiters, [])
            }
            if let lost {
                for waiter in refused {
                    waiter.completion?(.failure(lost))
                }
                return
            }
            if batch.isEmpty {
                return
            }
            await self.commit(batch)
        }
    }

    private func commit(_ batch: [PostgreSQLCommitWaiter]) async {
        let outcome: Result<([[AppendResult]], [LoggedItem]), any Error>
        do {
            outcome = .success(
                try await Self.withDeadline(Self.commitTimeout, url: self.url) {
                    try await self.write(batch, receivedAt: Date().storeMilliseconds)
                }
            )
        } catch {
            outcome = .failure(error)
        }
        let logger = self.logger
        switch outcome {
        case .failure(let error):
            self.noteFailure(error)
            for waiter in batch {
                if let completion = waiter.completion {
                    completion(.failure(error))
                } else {
                    logger.info("hold records not written", metadata: ["error": "\(error)"])
                }
            }
        case .success(let (results, logged)):
            let itemResults = results.joined()
            if !logged.isEmpty || !itemResults.isEmpty {
                let duplicates = itemResults.count { $0.isDuplicate }
                self.deliverLocal(
                    logged,
                    newItems: itemResults.count - duplicates,
                    waitingItems: itemResults.count { $0.isWaiting && !$0.isDuplicate },
                    duplicates: duplicates
                )
                self.notifyOthers(logged)
            }
            for (waiter, waiterResults) in zip(batch, results) {
                waiter.completion?(.success(waiterResults))
            }
        }
    }

    /// Writes one batch in one transaction (after giving new channels their rows).
    private func write(
        _ batch: [PostgreSQLCommitWaiter],
        receivedAt: Int64
    ) async throws
        -> ([[AppendResult]], [LoggedItem])
    {
        let epoch = self.epoch
        let logger = self.logger
        var names = Set(batch.flatMap { $0.items.map(\.channel) })
        return try await Self.describingErrors(url: self.url) {
            if !names.isEmpty {
                // New channels get their rows in a transaction of their own, so that the append transaction
                // only locks existing rows, in name order (no deadlock between nodes).
                try await self.client.query(
                    "INSERT INTO channel (name) SELECT unnest(\(Array(names))::text[]) ON CONFLICT (name) DO NOTHING",
                    logger: logger
                )
            }
            return try await self.client.withTransaction(logger: logger) { connection in
                var writer = PostgreSQLBatchWriter(
                    epoch: epoch,
                    receivedAt: receivedAt,
                    connection: connection,
                    logger: logger
                )
                if let through = batch.compactMap(\.releasesItemsReceivedThrough).max() {
                    names.formUnion(try await writer.channelsWithWaitingItems(receivedThrough: through))
                }
                try await writer.lock(channels: names.sorted(), items: batch.flatMap(\.items))
                var results: [[AppendResult]] = []
                for waiter in batch {
                    var waiterResults: [AppendResult] = []
                    for item in waiter.items {
                        waiterResults.append(try await writer.insert(item))
                    }
                    if let through = waiter.releasesItemsReceivedThrough {
                        try await writer.releaseExpired(receivedThrough: through)
                    }
                    results.append(waiterResults)
                    try await PostgreSQLHolds.write(
                        upserts: waiter.holdUpserts,
                        positions: waiter.holdPositions,
                        deletes: waiter.holdDeletes,
                        connection,
                        logger: logger
                    )
                }
                try await writer.flush()
                return (results, writer.logged)
            }
        }
    }

    /// How long a commit may take (waiting for a connection included) before its appenders get an error: while the
    /// server is unreachable, publishes fail after this instead of waiting for the pool's reconnection.
    static let commitTimeout: Duration = .seconds(10)

    /// The body's result, or ``StoreError/Code/unreachable`` once `limit` has passed. The body is not awaited past
    /// the limit: a transaction that commits later has an uncertain outcome for its appenders (as after any
    /// timeout); its items reach subscribers through the follower, and a retry with the same ids is a duplicate.
    static func withDeadline<T: Sendable>(
        _ limit: Duration,
        url: PostgreSQLURL,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let resumed = ResumeOnce()
        return try await withCheckedThrowingContinuation { continuation in
            let timer = Task {
                try? await Task.sleep(for: limit)
                if resumed.claim() {
                    resumed.cancelWork()
                    continuation.resume(
                        throwing: StoreError(
                            code: .unreachable,
                            path: url.description,
                            message: "PostgreSQL did not commit within \(limit.components.seconds) s"
                        )
                    )
                }
            }
            resumed.setWork(
                Task {
                    let result: Result<T, any Error>
                    do {
                        result = .success(try await body())
                    } catch {
                        result = .failure(error)
                    }
                    if resumed.claim() {
                        timer.cancel()
                        continuation.resume(with: result)
                    }
                }
            )
        }
    }
}

/// Lets the first of two racing tasks resume a continuation, and the timer cancel the work.
final class ResumeOnce: Sendable {
    private let resumed = Mutex(false)
    private let work = Mutex<Task<Void, Never>?>(nil)

    func setWork(_ task: Task<Void, Never>) {
        self.work.withLock { $0 = task }
    }

    func cancelWork() {
        self.work.withLock { $0 }?.cancel()
    }

    /// True for the first caller only.
    func claim() -> Bool {
        self.resumed.withLock { resumed in
            defer { resumed = true }
            return !resumed
        }
    }
}
