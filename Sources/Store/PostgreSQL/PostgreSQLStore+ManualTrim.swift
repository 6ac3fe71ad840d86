import Foundation
import PostgresNIO

extension PostgreSQLStore {
    /// Removes the oldest items of one channel, or of every channel, by an operator's rule (`p8ctl trim`), as
    /// ``ChannelStore/trim(channel:rule:)`` does: a prefix of each log, in one transaction per channel holding the
    /// channel's row lock (so it never races another node's append); the channel rows stay, so sequences are never
    /// reused and cursors into the removed part read as ``ReadResult/Status-swift.enum/olderThanRetained``.
    package func trim(channel: String?, rule: TrimRule) async throws -> [ChannelTrimResult] {
        try await Self.describingErrors(url: self.url) {
            let query: PostgresQuery =
                if let channel {
                    "SELECT id, name FROM channel WHERE name = \(channel)"
                } else {
                    "SELECT id, name FROM channel WHERE item_count > 0 ORDER BY name COLLATE \"C\""
                }
            var channels: [(Int64, String)] = []
            for try await row in try await self.client.query(query, logger: self.logger).decode((Int64, String).self) {
                channels.append(row)
            }
            var results: [ChannelTrimResult] = []
            for (channelID, name) in channels {
                let result = try await self.client.withTransaction(logger: self.logger) { connection in
                    try await Self.trim(connection, channelID: channelID, name: name, rule: rule, logger: self.logger)
                }
                results.append(result)
            }
            return results
        }
    }

    private static func trim(
        _ connection: PostgresConnection,
        channelID: Int64,
        name: String,
        rule: TrimRule,
        logger: Logger
    ) async throws -> ChannelTrimResult {
        try await connection.query("SELECT id FROM channel WHERE id = \(channelID) FOR UPDATE", logger: logger)
        let query: PostgresQuery
        switch rule {
        case .keepNewest(let count):
            query = """
                SELECT COALESCE((SELECT sequence FROM item WHERE channel_id = \(channelID) ORDER BY sequence DESC
                    LIMIT 1 OFFSET \(Int64(max(count, 0)))), 0)
                """
        case .publishedBefore(let date):
            query = """
                SELECT COALESCE(MAX(sequence), 0) FROM item WHERE channel_id = \(channelID)
                    AND published_at < \(date.storeMilliseconds)
                """
        }
        var through: Int64 = 0
        for try await found in try await connection.query(query, logger: logger).decode(Int64.self) {
            through = found
        }
        let (items, bytes) = try await Self.deletePrefix(
            connection,
            channelID: channelID,
            through: through,
            logger: logger
        )
        var remaining: Int64 = 0
        for try await count in try await connection.query(
            "SELECT item_count FROM channel WHERE id = \(channelID)",
            logger: logger
        ).decode(Int64.self) {
            remaining = count
        }
        return ChannelTrimResult(
            channel: name,
            deletedItems: items,
            deletedBytes: bytes,
            throughSequence: items > 0 ? through : 0,
            remainingItems: Int(remaining)
        )
    }
}
