import Foundation
import PostgresNIO

// What the status page and the metrics endpoint show, as ``ChannelStore`` gives it on SQLite (see
// ChannelStore+Levels.swift and ChannelStore+Status.swift): totals of the channel table, and this instance's holds.
extension PostgreSQLStore {
    /// The totals of the channel table (maintained with every append and trim): every node's items.
    package func levels() async throws -> StoreLevels {
        try await Self.describingErrors(url: self.url) {
            let rows = try await self.client.query(
                "SELECT COALESCE(SUM(byte_count), 0)::bigint, COALESCE(SUM(item_count), 0)::bigint, COUNT(*) FROM channel",
                logger: self.logger
            )
            for try await (bytes, items, channels) in rows.decode((Int64, Int64, Int64).self) {
                return StoreLevels(bytes: Int(bytes), items: Int(items), channels: Int(channels))
            }
            return StoreLevels(bytes: 0, items: 0, channels: 0)
        }
    }

    /// The live holds of `instance` by mode (`response`, `stream`, `webSocket`).
    package func holdCounts(instance: String) async throws -> [String: Int] {
        try await Self.describingErrors(url: self.url) {
            let rows = try await self.client.query(
                "SELECT mode, COUNT(*) FROM hold WHERE instance = \(instance) AND orphaned_at IS NULL GROUP BY mode",
                logger: self.logger
            )
            var counts: [String: Int] = [:]
            for try await (mode, count) in rows.decode((String, Int64).self) {
                counts[mode] = Int(count)
            }
            return counts
        }
    }

    /// The `limit` live holds of `instance` furthest behind one of their channels (holds with a known position).
    package func holdsFurthestBehind(instance: String, limit: Int) async throws -> [HoldLag] {
        try await Self.describingErrors(url: self.url) {
            let rows = try await self.client.query(
                """
                SELECT hold.id, hold.mode, hold_channel.channel, channel.last_sequence - hold_channel.last_sequence AS behind
                FROM hold_channel
                JOIN hold ON hold.id = hold_channel.hold_id
                JOIN channel ON channel.name = hold_channel.channel
                WHERE hold.instance = \(instance) AND hold.orphaned_at IS NULL AND hold_channel.last_sequence IS NOT NULL
                ORDER BY behind DESC, hold.started_at LIMIT \(Int64(limit))
                """,
                logger: self.logger
            )
            var lags: [HoldLag] = []
            for try await (id, mode, channel, behind) in rows.decode((String, String, String, Int64).self) {
                lags.append(HoldLag(holdID: id, mode: mode, channel: channel, behind: behind))
            }
            return lags
        }
    }
}
