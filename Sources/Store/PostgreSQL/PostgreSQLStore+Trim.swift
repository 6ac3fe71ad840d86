package import Foundation
import GRIP
import Logging
import PostgresNIO

extension PostgreSQLStore {
    /// Applies retention once, as ``ChannelStore/trim(now:)`` does, if no other node is applying it now (an
    /// advisory lock held for the run; a node that finds it taken returns an empty summary). Each channel's prefix
    /// is deleted in a transaction that holds the channel's row lock, so it never races an append.
    @discardableResult
    package func trim(now: Date = Date()) async throws -> TrimSummary {
        try await Self.describingErrors(url: self.url) {
            try await self.client.withConnection { connection in
                var locked = false
                for try await acquired in try await connection.query(
                    "SELECT pg_try_advisory_lock(\(Self.retentionLockKey))",
                    logger: self.logger
                ).decode(Bool.self) {
                    locked = acquired
                }
                guard locked else {
                    return TrimSummary()
                }
                do {
                    let summary = try await self.trim(connection, now: now)
                    try await connection.query(
                        "SELECT pg_advisory_unlock(\(Self.retentionLockKey))",
                        logger: self.logger
                    )
                    return summary
                } catch {
                    _ = try? await connection.query(
                        "SELECT pg_advisory_unlock(\(Self.retentionLockKey))",
                        logger: self.logger
                    )
                    throw error
                }
            }
        }
    }

    private func trim(_ connection: PostgresConnection, now: Date) async throws -> TrimSummary {
        var summary = TrimSummary()
        var channels: [(id: Int64, name: String, items: Int64, bytes: Int64, oldestAt: Int64?)] = []
        for try await row in try await connection.query(
            """
            SELECT id, name, item_count, byte_count,
                (SELECT published_at FROM item WHERE channel_id = channel.id ORDER BY sequence LIMIT 1)
            FROM channel WHERE item_count > 0
            """,
            logger: self.logger
        ).decode((Int64, String, Int64, Int64, Int64?).self) {
            channels.append(row)
        }
        let nowMilliseconds = now.storeMilliseconds
        for channel in channels {
            let policy = self.configuration.retention(forChannel: channel.name)
            let ageCutoff = nowMilliseconds - Int64(policy.maxAgeSeconds) * 1000
            guard
                channel.items > policy.maxItems || channel.bytes > policy.maxBytes
                    || (channel.oldestAt ?? Int64.max) < ageCutoff
            else {
                continue
            }
            let deleted = try await connection.withTransaction(logger: self.logger) { connection in
                try await connection.query(
                    "SELECT 1 FROM channel WHERE id = \(channel.id) FOR UPDATE",
                    logger: self.logger
                )
                let through = try await Self.cutoff(
                    connection,
                    channelID: channel.id,
                    policy: policy,
                    ageCutoff: ageCutoff,
                    logger: self.logger
                )
                return try await Self.deletePrefix(
                    connection,
                    channelID: channel.id,
                    through: through,
                    logger: self.logger
                )
            }
            if deleted.items > 0 {
                summary.deletedItems += deleted.items
                summary.deletedBytes += deleted.bytes
                summary.trimmedChannels.insert(channel.name)
            }
        }
        try await self.trimToBudget(connection, &summary)
        return summary
    }

    /// Deletes the oldest appended items anywhere (by global append order) while the total exceeds the budget.
    private func trimToBudget(_ connection: PostgresConnection, _ summary: inout TrimSummary) async throws {
        let budget = Int64(self.configuration.maxTotalBytes)
        while true {
            let deleted = try await connection.withTransaction(logger: self.logger) { connection in
                var total: Int64 = 0
                for try await sum in try await connection.query(
                    "SELECT COALESCE(SUM(byte_count), 0)::BIGINT FROM channel",
                    logger: self.logger
                ).decode(Int64.self) {
                    total = sum
                }
                var deleted: [(String, Int, Int)] = []
                if total <= budget {
                    return deleted
                }
                var prefixes: [(Int64, String, Int64)] = []
                for try await row in try await connection.query(
                    """
                    SELECT b.channel_id, c.name, b.through FROM (
                        SELECT channel_id, MAX(sequence) AS through FROM (
                            SELECT channel_id, sequence, SUM(size) OVER (ORDER BY id) - size AS before
                            FROM (SELECT id, channel_id, sequence, size FROM item ORDER BY id LIMIT 1000) AS oldest
                        ) AS running WHERE before < \(total - budget) GROUP BY channel_id
                    ) AS b JOIN channel c ON c.id = b.channel_id ORDER BY c.name
                    """,
                    logger: self.logger
                ).decode((Int64, String, Int64).self) {
                    prefixes.append(row)
                }
                for (channelID, name, through) in prefixes {
                    try await connection.query(
                        "SELECT 1 FROM channel WHERE id = \(channelID) FOR UPDATE",
                        logger: self.logger
                    )
                    let (items, bytes) = try await Self.deletePrefix(
                        connection,
                        channelID: channelID,
                        through: through,
                        logger: self.logger
                    )
                    deleted.append((name, items, bytes))
                }
                return deleted
            }
            if deleted.isEmpty {
                return
            }
            for (name, items, bytes) in deleted where items > 0 {
                summary.deletedItems += items
                summary.deletedBytes += bytes
                summary.trimmedChannels.insert(name)
            }
        }
    }

    /// The highest sequence that count, age or bytes retention removes from a channel (0 if none).
    private static func cutoff(
        _ connection: PostgresConnection,
        channelID: Int64,
        policy: GRIP.RetentionPolicy,
        ageCutoff: Int64,
        logger: Logger
    ) async throws -> Int64 {
        let query: PostgresQuery = """
            SELECT GREATEST(
                COALESCE((SELECT sequence FROM item WHERE channel_id = \(channelID) ORDER BY sequence DESC
                    LIMIT 1 OFFSET \(Int64(max(policy.maxItems, 0)))), 0),
                COALESCE((SELECT MAX(sequence) FROM item WHERE channel_id = \(channelID)
                    AND published_at < \(ageCutoff)), 0),
                COALESCE((SELECT MAX(sequence) FROM (
                    SELECT sequence, SUM(size) OVER (ORDER BY sequence DESC) AS newer FROM item
                    WHERE channel_id = \(channelID)) AS n WHERE newer > \(Int64(max(policy.maxBytes, 0)))), 0))
            """
        for try await through in try await connection.query(query, logger: logger).decode(Int64.self) {
            return through
        }
        return 0
    }

    /// Deletes a channel's items through a sequence and updates its counts; the caller holds the channel's row.
    static func deletePrefix(
        _ connection: PostgresConnection,
        channelID: Int64,
        through: Int64,
        logger: Logger
    ) async throws -> (items: Int, bytes: Int) {
        if through <= 0 {
            return (0, 0)
        }
        var deleted: (items: Int, bytes: Int) = (0, 0)
        for try await (items, bytes) in try await connection.query(
            """
            WITH d AS (DELETE FROM item WHERE channel_id = \(channelID) AND sequence <= \(through) RETURNING size),
            counts AS (SELECT COUNT(*)::BIGINT AS items, COALESCE(SUM(size), 0)::BIGINT AS bytes FROM d)
            UPDATE channel SET item_count = item_count - counts.items, byte_count = byte_count - counts.bytes,
                trimmed_through = GREATEST(trimmed_through, \(through))
            FROM counts WHERE channel.id = \(channelID) RETURNING counts.items, counts.bytes
            """,
            logger: logger
        ).decode((Int64, Int64).self) {
            deleted = (Int(items), Int(bytes))
        }
        return deleted
    }
}
