import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The writes of one PostgreSQL batch, with ``BatchWriter``'s semantics (sequences, de-duplication, the reordering
/// buffer), planned in memory over the rows the transaction locked and written in a few statements at the end.
struct PostgreSQLBatchWriter {
    struct Channel {
        var id: Int64
        var name: String
        var chain: ChainPlanner
    }

    struct ItemRow {
        var channelID: Int64
        var sequence: Int64
        var id: String
        var isAssignedId: Bool
        var prevId: String?
        var formats: Data
        var meta: Data?
        var size: Int
        var publishedAt: Int64
    }

    struct PendingKey: Hashable {
        var channelID: Int64
        var id: String
    }

    let epochDash: String
    let receivedAt: Int64
    let connection: PostgresConnection
    let logger: Logger
    var channels: [String: Channel] = [:]
    /// Publisher-chosen ids retained in the locked channels (among those this batch may meet), and those this
    /// batch logs: channel id → item id → sequence.
    var publisherIDs: [Int64: [String: Int64]] = [:]
    /// Ids this batch assigned: channel id → item id → sequence.
    var assignedIDs: [Int64: [String: Int64]] = [:]
    var itemRows: [ItemRow] = []
    var pendingInserts: [(key: PendingKey, waiting: WaitingItem)] = []
    var pendingDeletes: Set<PendingKey> = []
    /// The items that entered logs in this batch, in log order.
    var logged: [LoggedItem] = []

    init(epoch: String, receivedAt: Int64, connection: PostgresConnection, logger: Logger) {
        self.epochDash = epoch + "-"
        self.receivedAt = receivedAt
        self.connection = connection
        self.logger = logger
    }

    /// The channels (of any node) that have waiting items received at or before `receivedThrough`.
    func channelsWithWaitingItems(receivedThrough: Int64) async throws -> [String] {
        let rows = try await self.connection.query(
            """
            SELECT name FROM channel WHERE id IN
                (SELECT DISTINCT channel_id FROM pending_item WHERE received_at <= \(receivedThrough))
            """,
            logger: self.logger
        )
        var names: [String] = []
        for try await name in rows.decode(String.self) {
            names.append(name)
        }
        return names
    }

    /// Locks the channels' rows in name order and reads their state: sequence, chain position, waiting items, and
    /// the publisher ids among the batch's ids and the ids this batch may assign.
    mutating func lock(channels names: [String], items: [NewItem]) async throws {
        if names.isEmpty {
            return
        }
        let rows = try await self.connection.query(
            """
            SELECT id, name, last_sequence, chain_last_id FROM channel WHERE name = ANY(\(names)::text[])
            ORDER BY name FOR UPDATE
            """,
            logger: self.logger
        )
        var names: [Int64: String] = [:]
        for try await (id, name, lastSequence, chainLastId) in rows.decode((Int64, String, Int64, String?).self) {
            self.channels[name] = Channel(
                id: id,
                name: name,
                chain: ChainPlanner(lastSequence: lastSequence, chainLastId: chainLastId, waiting: [])
            )
            names[id] = name
        }
        let channelIDs = Array(names.keys)
        let pending = try await self.connection.query(
            """
            SELECT channel_id, item_id, prev_id, formats, meta, size, published_at, received_at FROM pending_item
            WHERE channel_id = ANY(\(channelIDs)::bigint[]) ORDER BY id
            """,
            logger: self.logger
        )
        for try await (channelID, itemID, prevID, formats, meta, size, publishedAt, receivedAt) in pending.decode(
            (Int64, String, String, ByteBuffer, ByteBuffer?, Int32, Int64, Int64).self
        ) {
            guard let name = names[channelID] else { continue }
            let item = NewItem(
                channel: name,
                id: itemID,
                prevId: prevID,
                formats: formats.data,
                meta: meta?.data,
                size: Int(size),
                publishedAt: Date(storeMilliseconds: publishedAt)
            )
            self.channels[name]?.chain.wait(item, receivedAt: receivedAt)
        }
        var candidates = Set(items.compactMap(\.id))
        var perChannel: [String: Int] = [:]
        for item in items {
            perChannel[item.channel, default: 0] += 1
        }
        for channel in self.channels.values {
            let count = (perChannel[channel.name] ?? 0) + channel.chain.waiting.count
            if count > 0 {
                for offset in 1...Int64(count) {
                    candidates.insert(self.epochDash + String(channel.chain.lastSequence + offset))
                }
            }
        }
        let known = try await self.connection.query(
            """
            SELECT channel_id, item_id, sequence FROM item
            WHERE channel_id = ANY(\(channelIDs)::bigint[]) AND item_id = ANY(\(Array(candidates))::text[])
                AND NOT is_assigned_id
            """,
            logger: self.logger
        )
        for try await (channelID, itemID, sequence) in known.decode((Int64, String, Int64).self) {
            self.publisherIDs[channelID, default: [:]][itemID] = sequence
        }
    }

    /// Appends one item: to the log if it follows the channel's chain (then the waiting items it unblocks), else to
    /// the reordering buffer (the rules are ``ChainPlanner``'s, as on SQLite).
    mutating func insert(_ item: NewItem) async throws -> AppendResult {
        guard var channel = self.channels[item.channel] else {
            throw StoreError(code: .corruptDatabase, path: item.channel, message: "the channel's row was not locked")
        }
        if let id = item.id, let existing = try await self.sequence(ofID: id, channelID: channel.id) {
            return AppendResult(channel: item.channel, sequence: existing, id: id, isDuplicate: true)
        }
        switch channel.chain.step(for: item) {
        case .alreadyWaiting:
            return .waiting(item, alreadyWaiting: true)
        case .wait:
            channel.chain.wait(item, receivedAt: self.receivedAt)
            let waiting = WaitingItem(item: item, receivedAt: self.receivedAt)
            self.pendingInserts.append((PendingKey(channelID: channel.id, id: item.id ?? ""), waiting))
            self.channels[item.channel] = channel
            return .waiting(item, alreadyWaiting: false)
        case .log:
            let result = self.log(item, in: &channel, releasedAfterWait: false)
            self.releaseSuccessors(in: &channel)
            self.channels[item.channel] = channel
            return result
        }
    }

    /// Releases, in every locked channel, the waiting items received at or before `receivedThrough`, oldest first,
    /// each followed by the waiting items it unblocks.
    mutating func releaseExpired(receivedThrough: Int64) async throws {
        for name in self.channels.keys.sorted() {
            guard var channel = self.channels[name] else { continue }
            while let first = channel.chain.nextExpired(receivedThrough: receivedThrough) {
                self.removePending(first, from: channel)
                _ = self.log(first.item, in: &channel, releasedAfterWait: true)
                self.releaseSuccessors(in: &channel)
            }
            self.channels[name] = channel
        }
    }

    private mutating func releaseSuccessors(in channel: inout Channel) {
        while let next = channel.chain.nextSuccessor() {
            self.removePending(next, from: channel)
            _ = self.log(next.item, in: &channel, releasedAfterWait: false)
        }
    }

    private mutating func removePending(_ waiting: WaitingItem, from channel: Channel) {
        let key = PendingKey(channelID: channel.id, id: waiting.item.id ?? "")
        if let index = self.pendingInserts.firstIndex(where: { $0.key == key }) {
            self.pendingInserts.remove(at: index)
        } else {
            self.pendingDeletes.insert(key)
        }
    }

    /// The sequence of the retained item (or one logged in this batch) with this id, if any.
    private func sequence(ofID id: String, channelID: Int64) async throws -> Int64? {
        if let sequence = self.publisherIDs[channelID]?[id] ?? self.assignedIDs[channelID]?[id] {
            return sequence
        }
        guard let (_, sequence) = ItemLookup.parseAssigned(id) else {
            return nil
        }
        let rows = try await self.connection.query(
            "SELECT sequence FROM item WHERE channel_id = \(channelID) AND sequence = \(sequence) AND item_id = \(id)",
            logger: self.logger
        )
        for try await found in rows.decode(Int64.self) {
            return found
        }
        return nil
    }

    /// Gives an item the channel's next sequence and plans its row.
    private mutating func log(_ item: NewItem, in channel: inout Channel, releasedAfterWait: Bool) -> AppendResult {
        let sequence = channel.chain.lastSequence + 1
        var id = item.id ?? self.epochDash + String(sequence)
        if item.id == nil {
            if self.publisherIDs[channel.id]?[id] != nil {
                // A publisher chose this id for another item: assign a different one.
                id += "-\(UUID().uuidString.prefix(8).lowercased())"
            }
            self.assignedIDs[channel.id, default: [:]][id] = sequence
        } else {
            self.publisherIDs[channel.id, default: [:]][id] = sequence
        }
        let publishedAt = item.publishedAt.storeMilliseconds
        self.itemRows.append(
            ItemRow(
                channelID: channel.id,
                sequence: sequence,
                id: id,
                isAssignedId: item.id == nil,
                prevId: item.prevId,
                formats: item.formats,
                meta: item.meta,
                size: item.size,
                publishedAt: publishedAt
            )
        )
        _ = channel.chain.enter(item)
        self.logged.append(LoggedItem(entered: item, sequence: sequence, id: id, releasedAfterWait: releasedAfterWait))
        return AppendResult(channel: item.channel, sequence: sequence, id: id, isDuplicate: false)
    }

    /// Writes what the batch planned: items, the reordering buffer's changes, the channel rows.
    func flush() async throws {
        if !self.itemRows.isEmpty {
            let rows = self.itemRows
            try await self.connection.query(
                """
                INSERT INTO item (channel_id, sequence, item_id, is_assigned_id, prev_id, formats, meta, size,
                    published_at)
                SELECT c, s, i, a, CASE WHEN hp THEN p END, f, CASE WHEN hm THEN m END, z, t
                FROM unnest(\(rows.map(\.channelID))::bigint[], \(rows.map(\.sequence))::bigint[],
                    \(rows.map(\.id))::text[], \(rows.map(\.isAssignedId))::boolean[],
                    \(rows.map { $0.prevId != nil })::boolean[], \(rows.map { $0.prevId ?? "" })::text[],
                    \(rows.map(\.formats.byteBuffer))::bytea[], \(rows.map { $0.meta != nil })::boolean[],
                    \(rows.map { ($0.meta ?? Data()).byteBuffer })::bytea[], \(rows.map { Int64($0.size) })::bigint[],
                    \(rows.map(\.publishedAt))::bigint[]) AS u(c, s, i, a, hp, p, f, hm, m, z, t)
                """,
                logger: self.logger
            )
        }
        if !self.pendingDeletes.isEmpty {
            let keys = Array(self.pendingDeletes)
            try await self.connection.query(
                """
                DELETE FROM pending_item p USING unnest(\(keys.map(\.channelID))::bigint[], \(keys.map(\.id))::text[])
                    AS u(c, i) WHERE p.channel_id = u.c AND p.item_id = u.i
                """,
                logger: self.logger
            )
        }
        if !self.pendingInserts.isEmpty {
            let pending = self.pendingInserts
            try await self.connection.query(
                """
                INSERT INTO pending_item (channel_id, item_id, prev_id, formats, meta, size, published_at,
                    received_at)
                SELECT c, i, p, f, CASE WHEN hm THEN m END, z, t, r
                FROM unnest(\(pending.map(\.key.channelID))::bigint[], \(pending.map(\.key.id))::text[],
                    \(pending.map { $0.waiting.item.prevId ?? "" })::text[],
                    \(pending.map(\.waiting.item.formats.byteBuffer))::bytea[],
                    \(pending.map { $0.waiting.item.meta != nil })::boolean[],
                    \(pending.map { ($0.waiting.item.meta ?? Data()).byteBuffer })::bytea[],
                    \(pending.map { Int32($0.waiting.item.size) })::integer[],
                    \(pending.map { $0.waiting.item.publishedAt.storeMilliseconds })::bigint[],
                    \(pending.map(\.waiting.receivedAt))::bigint[]) WITH ORDINALITY AS u(c, i, p, f, hm, m, z, t, r, n)
                ORDER BY n
                """,
                logger: self.logger
            )
        }
        let changed = self.channels.values.map { ($0.id, $0.chain) }.filter(\.1.changed)
        if !changed.isEmpty {
            try await self.connection.query(
                """
                UPDATE channel SET last_sequence = u.s, item_count = item_count + u.n, byte_count = byte_count + u.b,
                    chain_last_id = CASE WHEN u.hc THEN u.c END
                FROM unnest(\(changed.map(\.0))::bigint[], \(changed.map(\.1.lastSequence))::bigint[],
                    \(changed.map { Int64($0.1.addedItems) })::bigint[], \(changed.map { Int64($0.1.addedBytes) })::bigint[],
                    \(changed.map { $0.1.chainLastId != nil })::boolean[], \(changed.map { $0.1.chainLastId ?? "" })::text[])
                    AS u(i, s, n, b, hc, c)
                WHERE channel.id = u.i
                """,
                logger: self.logger
            )
        }
    }
}
