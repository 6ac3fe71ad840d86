import Foundation
import GRDB

/// The writes of one batch: sequences, de-duplication, the reordering buffer, and what to update afterwards.
///
/// Items enter a channel's log in its `prev-id` chain order (grip-spec §5.1): an item whose `prev-id` differs from
/// the channel's chain position (the id of the last item that entered the log in sequence) is committed to
/// `pendingItem` instead, and enters the log, with the next sequence, as soon as the item it names does, or once
/// `message_wait` has passed (``releaseExpired(channel:receivedThrough:_:)``); ``ChainPlanner`` holds these rules for
/// both backends. Live subscribers are given the log's order, so a client resuming from any id reads exactly what a
/// live one was sent.
struct BatchWriter {
    struct Touched {
        var id: Int64
        var chain: ChainPlanner

        init(id: Int64, lastSequence: Int64, chainLastId: String?, waiting: [WaitingItem]) {
            self.id = id
            self.chain = ChainPlanner(lastSequence: lastSequence, chainLastId: chainLastId, waiting: waiting)
        }

        var lastSequence: Int64 { self.chain.lastSequence }
        var chainLastId: String? { self.chain.chainLastId }
        var waiting: [WaitingItem] { self.chain.waiting }
    }

    /// The statements of the hot path, prepared once per batch (GRDB's statement cache hashes the SQL per call).
    struct Statements {
        private var insertStatement: Statement?
        private var publisherLookupStatement: Statement?

        mutating func insert(_ db: Database) throws -> Statement {
            if let statement = self.insertStatement {
                return statement
            }
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO item (channelId, sequence, itemId, isAssignedId, prevId, formats, meta, size, publishedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            self.insertStatement = statement
            return statement
        }

        mutating func publisherLookup(_ db: Database) throws -> Statement {
            if let statement = self.publisherLookupStatement {
                return statement
            }
            let statement = try db.cachedStatement(
                sql: "SELECT sequence FROM item WHERE channelId = ? AND itemId = ? AND isAssignedId = 0"
            )
            self.publisherLookupStatement = statement
            return statement
        }
    }

    let epochDash: String
    let cached: (String) -> CachedChannel?
    /// When the batch's items were received (milliseconds since 1970): a waiting item's wait counts from it.
    let receivedAt: Int64
    var statements = Statements()
    var touched: [String: Touched] = [:]
    /// The items that entered logs in this batch, in log order.
    var logged: [LoggedItem] = []

    init(epoch: String, receivedAt: Int64, cached: @escaping (String) -> CachedChannel?) {
        self.epochDash = epoch + "-"
        self.receivedAt = receivedAt
        self.cached = cached
    }

    /// Appends one item: to the log if it follows the channel's chain (then the waiting items it unblocks), else to
    /// the reordering buffer (the rules are ``ChainPlanner``'s).
    mutating func insert(_ item: NewItem, _ db: Database) throws -> AppendResult {
        var channel = try self.channel(named: item.channel, db)
        if let id = item.id, let existing = try ItemLookup.sequence(ofID: id, channelID: channel.id, db) {
            return AppendResult(channel: item.channel, sequence: existing, id: id, isDuplicate: true)
        }
        switch channel.chain.step(for: item) {
        case .alreadyWaiting:
            return .waiting(item, alreadyWaiting: true)
        case .wait:
            try self.wait(item, in: &channel, db)
            self.touched[item.channel] = channel
            return .waiting(item, alreadyWaiting: false)
        case .log:
            let result = try self.log(item, in: &channel, releasedAfterWait: false, db)
            try self.releaseSuccessors(in: &channel, db)
            self.touched[item.channel] = channel
            return result
        }
    }

    private mutating func wait(_ item: NewItem, in channel: inout Touched, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO pendingItem (channelId, itemId, prevId, formats, meta, size, publishedAt, receivedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                channel.id, item.id, item.prevId, item.formats, item.meta, item.size,
                item.publishedAt.storeMilliseconds,
                self.receivedAt,
            ]
        )
        channel.chain.wait(item, receivedAt: self.receivedAt)
    }

    /// Releases the channel's waiting items received at or before `receivedThrough`, oldest first, each followed
    /// by the waiting items it unblocks. Returns how many entered the log past a missing predecessor.
    mutating func releaseExpired(channel name: String, receivedThrough: Int64, _ db: Database) throws -> Int {
        var channel = try self.channel(named: name, db)
        var released = 0
        while let first = channel.chain.nextExpired(receivedThrough: receivedThrough) {
            try self.deleteWaiting(first, from: channel, db)
            _ = try self.log(first.item, in: &channel, releasedAfterWait: true, db)
            released += 1
            try self.releaseSuccessors(in: &channel, db)
        }
        self.touched[name] = channel
        return released
    }

    /// Moves the waiting items that now follow the chain position into the log, in chain order.
    private mutating func releaseSuccessors(in channel: inout Touched, _ db: Database) throws {
        while let next = channel.chain.nextSuccessor() {
            try self.deleteWaiting(next, from: channel, db)
            _ = try self.log(next.item, in: &channel, releasedAfterWait: false, db)
        }
    }

    private func deleteWaiting(_ waiting: WaitingItem, from channel: Touched, _ db: Database) throws {
        try db.execute(
            sql: "DELETE FROM pendingItem WHERE channelId = ? AND itemId = ?",
            arguments: [channel.id, waiting.item.id]
        )
    }

    /// Gives an item the channel's next sequence and writes it to the log.
    private mutating func log(
        _ item: NewItem,
        in channel: inout Touched,
        releasedAfterWait: Bool,
        _ db: Database
    ) throws -> AppendResult {
        let sequence = channel.lastSequence + 1
        var id = item.id ?? self.epochDash + String(sequence)
        if item.id == nil {
            let lookup = try self.statements.publisherLookup(db)
            if try Int64.fetchOne(lookup, arguments: [channel.id, id]) != nil {
                // A publisher chose this id for another item: assign a different one.
                id += "-\(UUID().uuidString.prefix(8).lowercased())"
            }
        }
        let publishedAt = item.publishedAt.storeMilliseconds
        try self.statements.insert(db).execute(arguments: [
            channel.id, sequence, id, item.id == nil, item.prevId, item.formats, item.meta, item.size, publishedAt,
        ])
        _ = channel.chain.enter(item)
        self.logged.append(LoggedItem(entered: item, sequence: sequence, id: id, releasedAfterWait: releasedAfterWait))
        return AppendResult(channel: item.channel, sequence: sequence, id: id, isDuplicate: false)
    }

    mutating func updateChannels(_ db: Database) throws {
        let update = try db.cachedStatement(
            sql: """
                UPDATE channel SET lastSequence = ?, itemCount = itemCount + ?, byteCount = byteCount + ?,
                    chainLastId = ?
                WHERE id = ?
                """
        )
        for channel in self.touched.values where channel.chain.changed {
            try update.execute(arguments: [
                channel.lastSequence, channel.chain.addedItems, channel.chain.addedBytes, channel.chainLastId,
                channel.id,
            ])
        }
    }

    private mutating func channel(named name: String, _ db: Database) throws -> Touched {
        if let touched = self.touched[name] {
            return touched
        }
        if let cached = self.cached(name) {
            return Touched(
                id: cached.id,
                lastSequence: cached.lastSequence,
                chainLastId: cached.chainLastId,
                waiting: cached.waiting
            )
        }
        if let loaded = try WaitingItems.loadChannel(named: name, db) {
            return Touched(
                id: loaded.id,
                lastSequence: loaded.lastSequence,
                chainLastId: loaded.chainLastId,
                waiting: loaded.waiting
            )
        }
        try db.execute(sql: "INSERT INTO channel (name) VALUES (?)", arguments: [name])
        return Touched(id: db.lastInsertedRowID, lastSequence: 0, chainLastId: nil, waiting: [])
    }
}

/// An item committed to a channel's reordering buffer, waiting for its predecessor.
struct WaitingItem: Sendable {
    var item: NewItem
    /// When it was received (milliseconds since 1970): its wait counts from it.
    var receivedAt: Int64
}

/// Reads the reordering buffer's state back from the database.
enum WaitingItems {
    /// A channel's writer state (sequence, chain position, waiting items), or nil if it was never published to.
    static func loadChannel(named name: String, _ db: Database) throws -> CachedChannel? {
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT id, lastSequence, chainLastId FROM channel WHERE name = ?"),
            arguments: [name]
        )
        guard let row else { return nil }
        let id: Int64 = row["id"]
        let waiting = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT itemId, prevId, formats, meta, size, publishedAt, receivedAt FROM pendingItem
                    WHERE channelId = ? ORDER BY receivedAt, rowid
                    """
            ),
            arguments: [id]
        ).map { Self.waitingItem($0, channel: name) }
        return CachedChannel(
            id: id,
            lastSequence: row["lastSequence"],
            chainLastId: row["chainLastId"],
            waiting: waiting
        )
    }

    /// Every channel that has waiting items, with its writer state: what a store that opens picks up again.
    static func loadWaitingChannels(_ db: Database) throws -> [String: CachedChannel] {
        let names = try String.fetchAll(
            db,
            sql: "SELECT name FROM channel WHERE id IN (SELECT DISTINCT channelId FROM pendingItem)"
        )
        var channels: [String: CachedChannel] = [:]
        for name in names {
            channels[name] = try self.loadChannel(named: name, db)
        }
        return channels
    }

    private static func waitingItem(_ row: Row, channel: String) -> WaitingItem {
        WaitingItem(
            item: NewItem(
                channel: channel,
                id: row["itemId"],
                prevId: row["prevId"],
                formats: row["formats"],
                meta: row["meta"],
                size: row["size"],
                publishedAt: Date(storeMilliseconds: row["publishedAt"])
            ),
            receivedAt: row["receivedAt"]
        )
    }
}
