import GRDB

/// A hold's channel and how far the hold's last delivered position is behind the channel's newest item.
package struct HoldLag: Sendable, Hashable {
    package var holdID: String
    package var mode: String
    package var channel: String
    /// Items published on the channel after the hold's last position.
    package var behind: Int64
}

extension ChannelStore {
    /// The live holds of `instance` by mode (`response`, `stream`, `webSocket`).
    package func holdCounts(instance: String) async throws -> [String: Int] {
        try await self.pool.read { db in
            var counts: [String: Int] = [:]
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT mode, COUNT(*) AS count FROM hold WHERE instance = ? AND orphanedAt IS NULL GROUP BY mode",
                arguments: [instance]
            )
            for row in rows {
                counts[row["mode"]] = row["count"]
            }
            return counts
        }
    }

    /// The `limit` live holds of `instance` furthest behind one of their channels (holds with a known position).
    package func holdsFurthestBehind(instance: String, limit: Int) async throws -> [HoldLag] {
        try await self.pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT hold.id AS holdID, hold.mode AS mode, holdChannel.channel AS channel,
                        channel.lastSequence - holdChannel.lastSequence AS behind
                    FROM holdChannel
                    JOIN hold ON hold.id = holdChannel.holdId
                    JOIN channel ON channel.name = holdChannel.channel
                    WHERE hold.instance = ? AND hold.orphanedAt IS NULL AND holdChannel.lastSequence IS NOT NULL
                    ORDER BY behind DESC, hold.startedAt LIMIT ?
                    """,
                arguments: [instance, limit]
            )
            return rows.map { row in
                HoldLag(holdID: row["holdID"], mode: row["mode"], channel: row["channel"], behind: row["behind"])
            }
        }
    }
}
