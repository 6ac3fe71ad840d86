package import Foundation
import GRDB
import GRIP
import Logging

/// What a ``ChannelStore/trim(now:)`` removed.
package struct TrimSummary: Sendable, Hashable {
    /// Items deleted.
    package var deletedItems: Int = 0
    /// Bytes (item sizes) deleted.
    package var deletedBytes: Int = 0
    /// Channels that lost items.
    package var trimmedChannels: Set<String> = []

    package init() {}
}

/// A channel's counters, as the trim pass sees them.
private struct ChannelCounts: Sendable {
    var id: Int64
    var name: String
    var itemCount: Int
    var byteCount: Int
    var oldestAt: Int64?
}

extension ChannelStore {
    /// Applies retention now: each channel's count, age and byte limits (``StoreConfiguration/retention(forChannel:)``),
    /// then the global byte budget (the items appended first go first, whatever their channel).
    ///
    /// Work is done in many short write transactions (one per channel, or per slice of the global budget), so
    /// appends interleave with a trim and wait at most for one small transaction. Sequences are never reused:
    /// channel rows stay when their items go. Used by ``RetentionService`` and by `p8ctl trim`.
    ///
    /// - Parameter now: The time age limits count from.
    /// - Returns: What was removed.
    @discardableResult
    package func trim(now: Date = Date()) async throws -> TrimSummary {
        try self.checkWritable()
        var summary = TrimSummary()
        let channels = try await self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, name, itemCount, byteCount,
                        (SELECT publishedAt FROM item WHERE channelId = channel.id ORDER BY sequence LIMIT 1) AS oldestAt
                    FROM channel WHERE itemCount > 0
                    """
            ).map { row in
                ChannelCounts(
                    id: row["id"],
                    name: row["name"],
                    itemCount: row["itemCount"],
                    byteCount: row["byteCount"],
                    oldestAt: row["oldestAt"]
                )
            }
        }
        let nowMilliseconds = now.storeMilliseconds
        for channel in channels {
            let name = channel.name
            let policy = self.configuration.retention(forChannel: name)
            let ageCutoff = nowMilliseconds - Int64(policy.maxAgeSeconds) * 1000
            guard
                channel.itemCount > policy.maxItems || channel.byteCount > policy.maxBytes
                    || (channel.oldestAt ?? Int64.max) < ageCutoff
            else {
                continue
            }
            let channelID = channel.id
            let deleted = try await self.pool.writeWithoutTransaction { db in
                var deleted = (items: 0, bytes: 0)
                var through: Int64 = 0
                try db.inTransaction {
                    through = try Self.cutoff(db, channelID: channelID, policy: policy, ageCutoff: ageCutoff)
                    deleted = try Self.deletePrefix(db, channelID: channelID, through: through)
                    return .commit
                }
                self.tails.drop(channel: name, through: through)
                return deleted
            }
            if deleted.items > 0 {
                summary.deletedItems += deleted.items
                summary.deletedBytes += deleted.bytes
                summary.trimmedChannels.insert(name)
            }
        }
        try await self.trimToBudget(&summary)
        if summary.deletedItems > 0 {
            self.logger.debug(
                "retention trimmed",
                metadata: ["p8.store.items": "\(summary.deletedItems)", "p8.store.bytes": "\(summary.deletedBytes)"]
            )
        }
        return summary
    }

    /// Deletes the oldest items anywhere, a slice at a time, until the total is within `maxTotalBytes`.
    private func trimToBudget(_ summary: inout TrimSummary) async throws {
        let budget = self.configuration.maxTotalBytes
        while true {
            let deleted = try await self.pool.writeWithoutTransaction { db -> [(String, Int64, Int, Int)] in
                var deleted: [(String, Int64, Int, Int)] = []
                try db.inTransaction {
                    let total = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(byteCount), 0) FROM channel") ?? 0
                    if total <= budget {
                        return .commit
                    }
                    // The oldest appended items whose sizes cover the excess (at most 1,000 per slice), per channel.
                    let rows = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT channelId, MAX(sequence) AS through FROM (
                                SELECT channelId, sequence, SUM(size) OVER (ORDER BY id) - size AS before
                                FROM (SELECT id, channelId, sequence, size FROM item ORDER BY id LIMIT 1000)
                            ) WHERE before < ? GROUP BY channelId
                            """,
                        arguments: [total - budget]
                    )
                    for row in rows {
                        let channelID: Int64 = row["channelId"]
                        let through: Int64 = row["through"]
                        let (items, bytes) = try Self.deletePrefix(db, channelID: channelID, through: through)
                        let name = try String.fetchOne(
                            db,
                            sql: "SELECT name FROM channel WHERE id = ?",
                            arguments: [channelID]
                        )
                        deleted.append((name ?? "", through, items, bytes))
                    }
                    return .commit
                }
                for (name, through, _, _) in deleted {
                    self.tails.drop(channel: name, through: through)
                }
                return deleted
            }
            if deleted.isEmpty {
                return
            }
            for (name, _, items, bytes) in deleted where items > 0 {
                summary.deletedItems += items
                summary.deletedBytes += bytes
                summary.trimmedChannels.insert(name)
            }
        }
    }

    /// The highest sequence that a channel's policy removes (0 if none).
    private static func cutoff(
        _ db: Database,
        channelID: Int64,
        policy: RetentionPolicy,
        ageCutoff: Int64
    ) throws
        -> Int64
    {
        var through: Int64 = 0
        let byCount = try Int64.fetchOne(
            db,
            sql: "SELECT sequence FROM item WHERE channelId = ? ORDER BY sequence DESC LIMIT 1 OFFSET ?",
            arguments: [channelID, max(policy.maxItems, 0)]
        )
        through = max(through, byCount ?? 0)
        let byAge = try Int64.fetchOne(
            db,
            sql: "SELECT MAX(sequence) FROM item WHERE channelId = ? AND publishedAt < ?",
            arguments: [channelID, ageCutoff]
        )
        through = max(through, byAge ?? 0)
        let byBytes = try Int64.fetchOne(
            db,
            sql: """
                SELECT MAX(sequence) FROM (
                    SELECT sequence, SUM(size) OVER (ORDER BY sequence DESC) AS newer FROM item WHERE channelId = ?
                ) WHERE newer > ?
                """,
            arguments: [channelID, max(policy.maxBytes, 0)]
        )
        return max(through, byBytes ?? 0)
    }

    /// Deletes a channel's items up to `through` and updates its counters (its `lastSequence` stays).
    static func deletePrefix(_ db: Database, channelID: Int64, through: Int64) throws -> (Int, Int) {
        if through <= 0 {
            return (0, 0)
        }
        let row = try Row.fetchOne(
            db,
            sql:
                "SELECT COUNT(*) AS items, COALESCE(SUM(size), 0) AS bytes FROM item WHERE channelId = ? AND sequence <= ?",
            arguments: [channelID, through]
        )
        let items: Int = row?["items"] ?? 0
        let bytes: Int = row?["bytes"] ?? 0
        if items == 0 {
            return (0, 0)
        }
        try db.execute(
            sql: "DELETE FROM item WHERE channelId = ? AND sequence <= ?",
            arguments: [channelID, through]
        )
        try db.execute(
            sql: """
                UPDATE channel SET itemCount = itemCount - ?, byteCount = byteCount - ?,
                    trimmedThrough = MAX(trimmedThrough, ?) WHERE id = ?
                """,
            arguments: [items, bytes, through, channelID]
        )
        return (items, bytes)
    }
}
