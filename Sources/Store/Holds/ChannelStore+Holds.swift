package import Foundation
import GRDB

extension ChannelStore {
    /// Inserts or replaces hold records and deletes others, and returns once they are committed.
    ///
    /// The writes share the transaction of the next group commit. Upserts apply before deletes.
    package func recordHolds(upserts: [HoldRecord], deletes: [String] = []) async throws {
        try self.checkWritable()
        if upserts.isEmpty && deletes.isEmpty {
            return
        }
        _ = try await withCheckedThrowingContinuation { continuation in
            self.submit(
                CommitWaiter(
                    items: [],
                    holdUpserts: upserts,
                    holdDeletes: deletes,
                    completion: { continuation.resume(with: $0) }
                )
            )
        }
    }

    /// Queues hold writes for the next group commit without waiting for it: the hot path's way to record holds.
    ///
    /// Holds need not be on disk before they start; a failed write is logged and dropped.
    package func enqueueHolds(upserts: [HoldRecord], deletes: [String] = []) throws {
        try self.checkWritable()
        if upserts.isEmpty && deletes.isEmpty {
            return
        }
        self.submit(CommitWaiter(items: [], holdUpserts: upserts, holdDeletes: deletes, completion: nil))
    }

    /// Queues position updates of live holds for the next group commit without waiting for it (see
    /// ``HoldPositions``); a failed write is logged and dropped.
    package func enqueueHoldPositions(_ positions: [HoldPositions]) throws {
        try self.checkWritable()
        if positions.isEmpty {
            return
        }
        self.submit(CommitWaiter(items: [], holdPositions: positions, completion: nil))
    }

    /// The hold records (of every instance, orphaned ones included), by start time; those on `channel` if given.
    package func holds(channel: String? = nil) async throws -> [HoldRecord] {
        try await self.pool.read { db in
            if let channel {
                return try HoldWriter.fetch(
                    db,
                    where: "id IN (SELECT holdId FROM holdChannel WHERE channel = ?)",
                    arguments: [channel]
                )
            }
            return try HoldWriter.fetch(db, where: "TRUE", arguments: [])
        }
    }

    /// Marks the records of every other instance as orphaned (their holder is gone), once, at start-up.
    ///
    /// The records are kept for inspection (``holds(channel:)``) until ``deleteOrphans()``.
    /// - Parameters:
    ///   - currentInstance: This process's instance id.
    ///   - now: The time recorded as `orphanedAt`.
    /// - Returns: The records newly marked.
    package func markOrphans(currentInstance: String, now: Date = Date()) async throws -> [HoldRecord] {
        try self.checkWritable()
        return try await self.pool.write { db in
            let orphans = try HoldWriter.fetch(
                db,
                where: "instance <> ? AND orphanedAt IS NULL",
                arguments: [currentInstance]
            )
            try db.execute(
                sql: "UPDATE hold SET orphanedAt = ? WHERE instance <> ? AND orphanedAt IS NULL",
                arguments: [now.storeMilliseconds, currentInstance]
            )
            return orphans.map { orphan in
                var orphan = orphan
                orphan.orphanedAt = Date(storeMilliseconds: now.storeMilliseconds)
                return orphan
            }
        }
    }

    /// Deletes every orphaned hold record.
    /// - Returns: How many were deleted.
    @discardableResult
    package func deleteOrphans() async throws -> Int {
        try self.checkWritable()
        return try await self.pool.write { db in
            try db.execute(sql: "DELETE FROM hold WHERE orphanedAt IS NOT NULL")
            return db.changesCount
        }
    }
}

/// Reads and writes the `hold` and `holdChannel` tables.
enum HoldWriter {
    static func write(
        upserts: [HoldRecord],
        positions: [HoldPositions] = [],
        deletes: [String],
        _ db: Database
    ) throws {
        if upserts.isEmpty && positions.isEmpty && deletes.isEmpty {
            return
        }
        let now = Date().storeMilliseconds
        for hold in upserts {
            try db.cachedStatement(
                sql: """
                    INSERT INTO hold (id, instance, mode, route, clientAddress, startedAt, timeoutAt, keepAlive, links,
                        timeoutResponse, updatedAt, orphanedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, mode = excluded.mode,
                        route = excluded.route, clientAddress = excluded.clientAddress, startedAt = excluded.startedAt,
                        timeoutAt = excluded.timeoutAt, keepAlive = excluded.keepAlive, links = excluded.links,
                        timeoutResponse = excluded.timeoutResponse, updatedAt = excluded.updatedAt,
                        orphanedAt = excluded.orphanedAt
                    """
            ).execute(arguments: [
                hold.id, hold.instance, hold.mode.rawValue, hold.route, hold.clientAddress,
                hold.startedAt.storeMilliseconds, hold.timeoutAt?.storeMilliseconds, hold.keepAlive, hold.links,
                hold.timeoutResponse, now, hold.orphanedAt?.storeMilliseconds,
            ])
            try db.cachedStatement(sql: "DELETE FROM holdChannel WHERE holdId = ?").execute(arguments: [hold.id])
            let insertChannel = try db.cachedStatement(
                sql: "INSERT INTO holdChannel (holdId, channel, position, lastId, lastSequence) VALUES (?, ?, ?, ?, ?)"
            )
            for (position, channel) in hold.channels.enumerated() {
                try insertChannel.execute(arguments: [
                    hold.id, channel.name, position, channel.lastId, channel.lastSequence,
                ])
            }
        }
        if !positions.isEmpty {
            let update = try db.cachedStatement(
                sql: "UPDATE holdChannel SET lastId = ?, lastSequence = ? WHERE holdId = ? AND channel = ?"
            )
            for hold in positions {
                for channel in hold.channels {
                    try update.execute(arguments: [channel.lastId, channel.lastSequence, hold.holdID, channel.name])
                }
            }
        }
        let delete = try db.cachedStatement(sql: "DELETE FROM hold WHERE id = ?")
        for id in deletes {
            try delete.execute(arguments: [id])
        }
    }

    static func fetch(_ db: Database, where condition: String, arguments: StatementArguments) throws -> [HoldRecord] {
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT * FROM hold WHERE \(condition) ORDER BY startedAt, id",
            arguments: arguments
        )
        if rows.isEmpty {
            return []
        }
        var channels: [String: [HoldRecord.Channel]] = [:]
        let channelRows = try Row.fetchCursor(
            db,
            sql: """
                SELECT holdId, channel, lastId, lastSequence FROM holdChannel
                WHERE holdId IN (SELECT id FROM hold WHERE \(condition)) ORDER BY holdId, position
                """,
            arguments: arguments
        )
        while let row = try channelRows.next() {
            channels[row["holdId"], default: []].append(
                HoldRecord.Channel(name: row["channel"], lastId: row["lastId"], lastSequence: row["lastSequence"])
            )
        }
        return rows.map { row in
            let id: String = row["id"]
            let timeoutAt: Int64? = row["timeoutAt"]
            let orphanedAt: Int64? = row["orphanedAt"]
            return HoldRecord(
                id: id,
                instance: row["instance"],
                mode: HoldRecord.Mode(rawValue: row["mode"]) ?? .response,
                route: row["route"],
                clientAddress: row["clientAddress"],
                channels: channels[id] ?? [],
                startedAt: Date(storeMilliseconds: row["startedAt"]),
                timeoutAt: timeoutAt.map { Date(storeMilliseconds: $0) },
                keepAlive: row["keepAlive"],
                links: row["links"],
                timeoutResponse: row["timeoutResponse"],
                orphanedAt: orphanedAt.map { Date(storeMilliseconds: $0) }
            )
        }
    }
}
