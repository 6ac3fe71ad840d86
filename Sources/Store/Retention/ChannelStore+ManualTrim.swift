package import Foundation
import GRDB

/// What an operator's trim (``ChannelStore/trim(channel:rule:)``) removes from each channel.
package enum TrimRule: Sendable, Hashable {
    /// Keep the newest `n` items of each channel (`0` removes every item).
    case keepNewest(Int)
    /// Remove every item up to the newest one published before this time.
    case publishedBefore(Date)
}

/// What an operator's trim removed from one channel.
package struct ChannelTrimResult: Sendable, Hashable {
    /// The channel.
    package var channel: String
    /// Items deleted.
    package var deletedItems: Int
    /// Bytes (item sizes) deleted.
    package var deletedBytes: Int
    /// The highest sequence deleted (0 if nothing was).
    package var throughSequence: Int64
    /// Items still retained.
    package var remainingItems: Int

    package init(channel: String, deletedItems: Int, deletedBytes: Int, throughSequence: Int64, remainingItems: Int) {
        self.channel = channel
        self.deletedItems = deletedItems
        self.deletedBytes = deletedBytes
        self.throughSequence = throughSequence
        self.remainingItems = remainingItems
    }
}

extension ChannelStore {
    /// Removes the oldest items of one channel, or of every channel, by an operator's rule (`p8ctl trim`).
    ///
    /// As retention does, it deletes a prefix of each log in one short write transaction per channel and keeps
    /// the channel rows, so sequences are never reused and cursors into the removed part read as
    /// ``ReadResult/Status-swift.enum/olderThanRetained``. Safe while a server writes the same file (SQLite
    /// locking); a server's in-memory tail may still answer resumes with items removed here, which delivers
    /// more, never less.
    ///
    /// - Parameters:
    ///   - channel: The channel, or `nil` for every channel with retained items.
    ///   - rule: What to remove.
    /// - Returns: One result per channel looked at (by name), including those that lost nothing.
    package func trim(channel: String?, rule: TrimRule) async throws -> [ChannelTrimResult] {
        try self.checkWritable()
        let channels = try await self.pool.read { db -> [(Int64, String)] in
            let rows: [Row]
            if let channel {
                rows = try Row.fetchAll(db, sql: "SELECT id, name FROM channel WHERE name = ?", arguments: [channel])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT id, name FROM channel WHERE itemCount > 0 ORDER BY name")
            }
            return rows.map { ($0["id"], $0["name"]) }
        }
        var results: [ChannelTrimResult] = []
        for (channelID, name) in channels {
            let result = try await self.pool.writeWithoutTransaction { db in
                var result = ChannelTrimResult(
                    channel: name,
                    deletedItems: 0,
                    deletedBytes: 0,
                    throughSequence: 0,
                    remainingItems: 0
                )
                try db.inTransaction {
                    let through: Int64
                    switch rule {
                    case .keepNewest(let count):
                        through =
                            try Int64.fetchOne(
                                db,
                                sql: """
                                    SELECT sequence FROM item WHERE channelId = ? ORDER BY sequence DESC LIMIT 1 OFFSET ?
                                    """,
                                arguments: [channelID, max(count, 0)]
                            ) ?? 0
                    case .publishedBefore(let date):
                        through =
                            try Int64.fetchOne(
                                db,
                                sql: "SELECT MAX(sequence) FROM item WHERE channelId = ? AND publishedAt < ?",
                                arguments: [channelID, date.storeMilliseconds]
                            ) ?? 0
                    }
                    let (items, bytes) = try Self.deletePrefix(db, channelID: channelID, through: through)
                    result.deletedItems = items
                    result.deletedBytes = bytes
                    result.throughSequence = items > 0 ? through : 0
                    result.remainingItems =
                        try Int.fetchOne(db, sql: "SELECT itemCount FROM channel WHERE id = ?", arguments: [channelID])
                        ?? 0
                    return .commit
                }
                if result.deletedItems > 0 {
                    self.tails.drop(channel: name, through: result.throughSequence)
                }
                return result
            }
            results.append(result)
        }
        return results
    }
}
