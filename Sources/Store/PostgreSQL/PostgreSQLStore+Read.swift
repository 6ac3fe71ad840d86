import Foundation
import NIOCore
import PostgresNIO

extension PostgreSQLStore {
    /// Reads a channel's items after a cursor, as ``ChannelStore/read(channel:after:limit:)`` does.
    package func read(channel: String, after cursor: Cursor, limit: Int = 1000) async throws -> ReadResult {
        self.readSources.count(fromMemory: false)
        return try await Self.describingErrors(url: self.url) {
            try await self.client.withConnection { connection in
                try await self.read(connection, channel: channel, after: cursor, limit: limit)
            }
        }
    }

    package func oldest(channel: String) async throws -> StoredItem? {
        try await self.fetchEnd(channel: channel, newest: false)
    }

    package func newest(channel: String) async throws -> StoredItem? {
        try await self.fetchEnd(channel: channel, newest: true)
    }

    package func channelSummaries(prefix: String = "") async throws -> [ChannelSummary] {
        try await Self.describingErrors(url: self.url) {
            let rows = try await self.client.query(
                """
                SELECT name, last_sequence, item_count, byte_count,
                    (SELECT MIN(sequence) FROM item WHERE channel_id = channel.id)
                FROM channel WHERE starts_with(name, \(prefix)) ORDER BY name COLLATE "C"
                """,
                logger: self.logger
            )
            var summaries: [ChannelSummary] = []
            for try await (name, lastSequence, itemCount, byteCount, oldest) in rows.decode(
                (String, Int64, Int64, Int64, Int64?).self
            ) {
                summaries.append(
                    ChannelSummary(
                        name: name,
                        lastSequence: lastSequence,
                        oldestSequence: oldest,
                        itemCount: Int(itemCount),
                        byteCount: Int(byteCount)
                    )
                )
            }
            return summaries
        }
    }

    private func fetchEnd(channel: String, newest: Bool) async throws -> StoredItem? {
        try await Self.describingErrors(url: self.url) {
            let query: PostgresQuery =
                newest
                ? """
                SELECT i.sequence, i.item_id, i.prev_id, i.formats, i.meta, i.size, i.published_at FROM item i
                JOIN channel c ON c.id = i.channel_id WHERE c.name = \(channel) ORDER BY i.sequence DESC LIMIT 1
                """
                : """
                SELECT i.sequence, i.item_id, i.prev_id, i.formats, i.meta, i.size, i.published_at FROM item i
                JOIN channel c ON c.id = i.channel_id WHERE c.name = \(channel) ORDER BY i.sequence ASC LIMIT 1
                """
            return try await Self.items(in: self.client.query(query, logger: self.logger), channel: channel).first
        }
    }

    private func read(
        _ connection: PostgresConnection,
        channel: String,
        after cursor: Cursor,
        limit: Int
    ) async throws
        -> ReadResult
    {
        var row: (id: Int64, lastSequence: Int64, oldest: Int64?)?
        for try await (id, lastSequence, oldest) in try await connection.query(
            """
            SELECT id, last_sequence, (SELECT MIN(sequence) FROM item WHERE channel_id = channel.id)
            FROM channel WHERE name = \(channel)
            """,
            logger: self.logger
        ).decode((Int64, Int64, Int64?).self) {
            row = (id, lastSequence, oldest)
        }
        guard let row else {
            return ReadStart.missingChannel(cursor, epoch: self.epoch)
        }
        let lastSequence = row.lastSequence
        var retainedID: Int64?
        if case .id(let id) = cursor {
            retainedID = try await Self.sequence(ofID: id, channelID: row.id, connection, logger: self.logger)
        }
        let after: Int64
        switch ReadStart(
            cursor,
            epoch: self.epoch,
            lastSequence: lastSequence,
            oldest: row.oldest,
            retainedID: retainedID
        ) {
        case .answered(let result):
            return result
        case .after(let sequence):
            after = sequence
        }
        // Bounded by the sequence just read, so that the result never shows items past its `lastSequence`.
        let items = try await Self.items(
            in: connection.query(
                """
                SELECT sequence, item_id, prev_id, formats, meta, size, published_at FROM item
                WHERE channel_id = \(row.id) AND sequence > \(after) AND sequence <= \(lastSequence)
                ORDER BY sequence LIMIT \(Int64(limit))
                """,
                logger: self.logger
            ),
            channel: channel
        )
        return ReadResult(epoch: self.epoch, status: .found(items), lastSequence: lastSequence)
    }

    /// The sequence of the retained item with this id (publisher-chosen or assigned) in the channel, if any.
    static func sequence(
        ofID id: String,
        channelID: Int64,
        _ connection: PostgresConnection,
        logger: Logger
    ) async throws -> Int64? {
        for try await sequence in try await connection.query(
            "SELECT sequence FROM item WHERE channel_id = \(channelID) AND item_id = \(id) AND NOT is_assigned_id",
            logger: logger
        ).decode(Int64.self) {
            return sequence
        }
        guard let (_, sequence) = ItemLookup.parseAssigned(id) else {
            return nil
        }
        for try await found in try await connection.query(
            "SELECT sequence FROM item WHERE channel_id = \(channelID) AND sequence = \(sequence) AND item_id = \(id)",
            logger: logger
        ).decode(Int64.self) {
            return found
        }
        return nil
    }

    static func items(in rows: PostgresRowSequence, channel: String) async throws -> [StoredItem] {
        var items: [StoredItem] = []
        for try await (sequence, id, prevId, formats, meta, size, publishedAt) in rows.decode(
            (Int64, String, String?, ByteBuffer, ByteBuffer?, Int32, Int64).self
        ) {
            items.append(
                StoredItem(
                    channel: channel,
                    sequence: sequence,
                    id: id,
                    prevId: prevId,
                    formats: formats.data,
                    meta: meta?.data,
                    size: Int(size),
                    publishedAt: Date(storeMilliseconds: publishedAt)
                )
            )
        }
        return items
    }
}
