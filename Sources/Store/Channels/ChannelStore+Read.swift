import Foundation
import GRDB

extension ChannelStore {
    /// Reads a channel's items after a cursor.
    ///
    /// A sequence cursor `s` is found when `s` is at most the channel's last sequence and no item after it has
    /// been trimmed; `.sequence(0)` on a channel never published to is found (and empty). An id cursor is found
    /// when the item is retained; an id the store assigned (`"{epoch}-{sequence}"`) of this epoch is resolved
    /// to its sequence even after trimming, so it yields ``ReadResult/Status-swift.enum/olderThanRetained``
    /// rather than ``ReadResult/Status-swift.enum/unknownCursor``.
    ///
    /// - Parameters:
    ///   - channel: The channel.
    ///   - cursor: Where to start.
    ///   - limit: The most items to return.
    /// - Returns: The items, or why there are none to resume from, with the epoch.
    package func read(channel: String, after cursor: Cursor, limit: Int = 1000) async throws -> ReadResult {
        if let (items, lastSequence) = self.tails.read(channel: channel, after: cursor, limit: limit) {
            self.readSources.count(fromMemory: true)
            return ReadResult(epoch: self.epoch, status: .found(items), lastSequence: lastSequence)
        }
        self.readSources.count(fromMemory: false)
        return try await self.pool.read { db in
            try self.readFromDatabase(db, channel: channel, after: cursor, limit: limit)
        }
    }

    /// The oldest retained item of a channel, if any.
    package func oldest(channel: String) async throws -> StoredItem? {
        try await self.pool.read { db in
            try Self.fetchItems(db, channel: channel, where: "TRUE", order: "ASC", limit: 1).first
        }
    }

    /// The newest retained item of a channel, if any.
    package func newest(channel: String) async throws -> StoredItem? {
        try await self.pool.read { db in
            try Self.fetchItems(db, channel: channel, where: "TRUE", order: "DESC", limit: 1).first
        }
    }

    /// Every channel whose name starts with `prefix`, by name, with its counts.
    package func channelSummaries(prefix: String = "") async throws -> [ChannelSummary] {
        try await self.pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT name, lastSequence, itemCount, byteCount,
                        (SELECT MIN(sequence) FROM item WHERE channelId = channel.id) AS oldestSequence
                    FROM channel WHERE instr(name, ?) = 1 ORDER BY name
                    """,
                arguments: [prefix]
            )
            return rows.map { row in
                ChannelSummary(
                    name: row["name"],
                    lastSequence: row["lastSequence"],
                    oldestSequence: row["oldestSequence"],
                    itemCount: row["itemCount"],
                    byteCount: row["byteCount"]
                )
            }
        }
    }

    private func readFromDatabase(
        _ db: Database,
        channel: String,
        after cursor: Cursor,
        limit: Int
    ) throws
        -> ReadResult
    {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT id, lastSequence FROM channel WHERE name = ?"),
            arguments: [channel]
        )
        guard let row else {
            return ReadStart.missingChannel(cursor, epoch: self.epoch)
        }
        let channelID: Int64 = row["id"]
        let lastSequence: Int64 = row["lastSequence"]
        let oldest = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT MIN(sequence) FROM item WHERE channelId = ?"),
            arguments: [channelID]
        )
        var retainedID: Int64?
        if case .id(let id) = cursor {
            retainedID = try ItemLookup.sequence(ofID: id, channelID: channelID, db)
        }
        let after: Int64
        switch ReadStart(cursor, epoch: self.epoch, lastSequence: lastSequence, oldest: oldest, retainedID: retainedID)
        {
        case .answered(let result):
            return result
        case .after(let sequence):
            after = sequence
        }
        let items = try Self.fetchItems(
            db,
            channel: channel,
            channelID: channelID,
            where: "sequence > ?",
            arguments: [after],
            order: "ASC",
            limit: limit
        )
        return ReadResult(epoch: self.epoch, status: .found(items), lastSequence: lastSequence)
    }

    private static func fetchItems(
        _ db: Database,
        channel: String,
        where condition: String,
        order: String,
        limit: Int
    ) throws -> [StoredItem] {
        let channelID = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT id FROM channel WHERE name = ?"),
            arguments: [channel]
        )
        guard let channelID else {
            return []
        }
        return try Self.fetchItems(
            db,
            channel: channel,
            channelID: channelID,
            where: condition,
            arguments: [],
            order: order,
            limit: limit
        )
    }

    private static func fetchItems(
        _ db: Database,
        channel: String,
        channelID: Int64,
        where condition: String,
        arguments: StatementArguments,
        order: String,
        limit: Int
    ) throws -> [StoredItem] {
        let statement = try db.cachedStatement(
            sql: """
                SELECT sequence, itemId, prevId, formats, meta, size, publishedAt FROM item
                WHERE channelId = ? AND \(condition) ORDER BY sequence \(order) LIMIT ?
                """
        )
        let rows = try Row.fetchCursor(statement, arguments: [channelID] + arguments + [limit])
        var items: [StoredItem] = []
        while let row = try rows.next() {
            items.append(
                StoredItem(
                    channel: channel,
                    sequence: row["sequence"],
                    id: row["itemId"],
                    prevId: row["prevId"],
                    formats: row["formats"],
                    meta: row["meta"],
                    size: row["size"],
                    publishedAt: Date(storeMilliseconds: row["publishedAt"])
                )
            )
        }
        return items
    }
}
