import Foundation
import GRDB

extension ChannelStore {
    /// Writes a new SQLite database at `path` (which must not exist) holding what `source` retains, whichever its
    /// backend: `p8ctl backup` of a PostgreSQL database, to move a site to SQLite (or keep a copy).
    ///
    /// Every channel keeps its name, last sequence and retained items with their sequences, ids, `prev-id`s,
    /// formats, meta, sizes and publication times, so cursors that clients hold (ids the store assigned included)
    /// read the same on the copy; cursors into what was trimmed read as older than retained. The copy gets an
    /// epoch of its own, as ``backup(to:)`` gives one. Not copied: hold records (a server's live state) and items
    /// still waiting in the reordering buffer, which enter the log of the source only.
    ///
    /// - Parameter source: Read a channel at a time, a page of 1,000 items at a time (each page written as it is
    ///   read); a source written meanwhile gives each channel as its pages were read.
    package static func copy(from source: any ChannelLogStore, to path: String) async throws -> BackupSummary {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        try StoreMigrations.migrator().migrate(queue)
        let sourceEpoch = source.epoch
        for summary in try await source.channelSummaries(prefix: "") {
            let channelID = try await queue.write { db in
                try db.execute(
                    sql: "INSERT INTO channel (name, lastSequence, trimmedThrough) VALUES (?, ?, ?)",
                    arguments: [summary.name, summary.lastSequence, summary.lastSequence]
                )
                return db.lastInsertedRowID
            }
            var cursor = Cursor.oldestRetained
            var first: Int64?
            var last = summary.lastSequence
            var count = 0
            var bytes = 0
            while true {
                let result = try await source.read(channel: summary.name, after: cursor, limit: 1000)
                guard let page = result.items, let newest = page.last else { break }
                first = first ?? page.first?.sequence
                last = max(last, newest.sequence)
                count += page.count
                bytes += page.reduce(0) { $0 + $1.size }
                cursor = .sequence(newest.sequence)
                try await queue.write { db in
                    let insert = try db.cachedStatement(
                        sql: """
                            INSERT INTO item (channelId, sequence, itemId, isAssignedId, prevId, formats, meta, size,
                                publishedAt)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """
                    )
                    for item in page {
                        try insert.execute(arguments: [
                            channelID, item.sequence, item.id, item.id == "\(sourceEpoch)-\(item.sequence)",
                            item.prevId, item.formats, item.meta, item.size, item.publishedAt.storeMilliseconds,
                        ])
                    }
                }
            }
            try await queue.write { [first, last, count, bytes] db in
                try db.execute(
                    sql: """
                        UPDATE channel SET lastSequence = ?, trimmedThrough = ?, itemCount = ?, byteCount = ?
                        WHERE id = ?
                        """,
                    arguments: [last, (first ?? last + 1) - 1, count, bytes, channelID]
                )
            }
        }
        return try await queue.read { db in try BackupSummary(db) }
    }
}

extension BackupSummary {
    /// What a copy holds: its epoch, and the totals of its channel table.
    init(_ db: Database) throws {
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT (SELECT epoch FROM store WHERE id = 1) AS epoch, COUNT(*) AS channels,
                    COALESCE(SUM(itemCount), 0) AS items, COALESCE(SUM(byteCount), 0) AS bytes FROM channel
                """
        )
        self.init(
            epoch: row?["epoch"] ?? "",
            channelCount: row?["channels"] ?? 0,
            itemCount: row?["items"] ?? 0,
            byteCount: row?["bytes"] ?? 0
        )
    }
}
