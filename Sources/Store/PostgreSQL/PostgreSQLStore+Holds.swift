package import Foundation
import Logging
import NIOCore
import PostgresNIO

extension PostgreSQLStore {
    /// Writes hold records in the next commit and returns once committed. Each node writes the records of its own
    /// instance; they live side by side in the shared database.
    package func recordHolds(upserts: [HoldRecord], deletes: [String] = []) async throws {
        if upserts.isEmpty && deletes.isEmpty {
            return
        }
        _ = try await withCheckedThrowingContinuation { continuation in
            self.submit(
                PostgreSQLCommitWaiter(
                    items: [],
                    holdUpserts: upserts,
                    holdDeletes: deletes,
                    completion: { continuation.resume(with: $0) }
                )
            )
        }
    }

    /// Queues hold writes for the next commit without waiting for it (a failure is logged).
    package func enqueueHolds(upserts: [HoldRecord], deletes: [String] = []) {
        if upserts.isEmpty && deletes.isEmpty {
            return
        }
        self.submit(PostgreSQLCommitWaiter(items: [], holdUpserts: upserts, holdDeletes: deletes, completion: nil))
    }

    /// Queues position updates of live holds for the next commit without waiting for it (see ``HoldPositions``).
    package func enqueueHoldPositions(_ positions: [HoldPositions]) {
        if positions.isEmpty {
            return
        }
        self.submit(PostgreSQLCommitWaiter(items: [], holdPositions: positions, completion: nil))
    }

    package func holds(channel: String? = nil) async throws -> [HoldRecord] {
        try await Self.describingErrors(url: self.url) {
            try await self.client.withConnection { connection in
                try await PostgreSQLHolds.fetch(connection, channel: channel, orphansOf: nil, logger: self.logger)
            }
        }
    }

    /// Marks as orphaned the records of `currentInstance`'s earlier runs and of instances that are gone.
    ///
    /// On a shared database, the records of other live nodes must stay: a node marks only the records of instances
    /// with the same node prefix (the part of the instance before the last `:`, see `Runner`), or all other
    /// instances' when the instance has no prefix, as on SQLite.
    package func markOrphans(currentInstance: String, now: Date = Date()) async throws -> [HoldRecord] {
        try await Self.describingErrors(url: self.url) {
            try await self.client.withTransaction(logger: self.logger) { connection in
                let orphans = try await PostgreSQLHolds.fetch(
                    connection,
                    channel: nil,
                    orphansOf: currentInstance,
                    logger: self.logger
                )
                let ids = orphans.map(\.id)
                let marked = now.storeMilliseconds
                try await connection.query(
                    "UPDATE hold SET orphaned_at = \(marked) WHERE id = ANY(\(ids)::text[])",
                    logger: self.logger
                )
                return orphans.map { orphan in
                    var orphan = orphan
                    orphan.orphanedAt = Date(storeMilliseconds: marked)
                    return orphan
                }
            }
        }
    }

    @discardableResult
    package func deleteOrphans() async throws -> Int {
        try await Self.describingErrors(url: self.url) {
            var count = 0
            for try await deleted in try await self.client.query(
                "WITH d AS (DELETE FROM hold WHERE orphaned_at IS NOT NULL RETURNING 1) SELECT COUNT(*) FROM d",
                logger: self.logger
            ).decode(Int64.self) {
                count = Int(deleted)
            }
            return count
        }
    }
}

/// Hold records on PostgreSQL (the schema of SQLite's `HoldWriter`).
enum PostgreSQLHolds {
    static func write(
        upserts: [HoldRecord],
        positions: [HoldPositions],
        deletes: [String],
        _ connection: PostgresConnection,
        logger: Logger
    )
        async throws
    {
        let now = Date().storeMilliseconds
        for hold in upserts {
            try await connection.query(
                """
                INSERT INTO hold (id, instance, mode, route, client_address, started_at, timeout_at, keep_alive, links,
                    timeout_response, updated_at, orphaned_at)
                VALUES (\(hold.id), \(hold.instance), \(hold.mode.rawValue), \(hold.route), \(hold.clientAddress),
                    \(hold.startedAt.storeMilliseconds), \(hold.timeoutAt?.storeMilliseconds),
                    \(hold.keepAlive?.byteBuffer), \(hold.links?.byteBuffer), \(hold.timeoutResponse?.byteBuffer),
                    \(now), \(hold.orphanedAt?.storeMilliseconds))
                ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, mode = excluded.mode,
                    route = excluded.route, client_address = excluded.client_address, started_at = excluded.started_at,
                    timeout_at = excluded.timeout_at, keep_alive = excluded.keep_alive, links = excluded.links,
                    timeout_response = excluded.timeout_response, updated_at = excluded.updated_at,
                    orphaned_at = excluded.orphaned_at
                """,
                logger: logger
            )
            try await connection.query("DELETE FROM hold_channel WHERE hold_id = \(hold.id)", logger: logger)
            if !hold.channels.isEmpty {
                let channels = hold.channels
                try await connection.query(
                    """
                    INSERT INTO hold_channel (hold_id, channel, position, last_id, last_sequence)
                    SELECT \(hold.id), c, n - 1, CASE WHEN hl THEN l END, CASE WHEN hs THEN s END
                    FROM unnest(\(channels.map(\.name))::text[], \(channels.map { $0.lastId != nil })::boolean[],
                        \(channels.map { $0.lastId ?? "" })::text[], \(channels.map { $0.lastSequence != nil })::boolean[],
                        \(channels.map { $0.lastSequence ?? 0 })::bigint[]) WITH ORDINALITY AS u(c, hl, l, hs, s, n)
                    """,
                    logger: logger
                )
            }
        }
        let updates = positions.flatMap { hold in hold.channels.map { (hold.holdID, $0) } }
        if !updates.isEmpty {
            // One statement for every position (NULLs travel as flags beside placeholder values).
            try await connection.query(
                """
                UPDATE hold_channel h SET last_id = CASE WHEN u.hl THEN u.l END, last_sequence = CASE WHEN u.hs THEN u.s END
                FROM unnest(\(updates.map(\.0))::text[], \(updates.map(\.1.name))::text[],
                    \(updates.map { $0.1.lastId != nil })::boolean[], \(updates.map { $0.1.lastId ?? "" })::text[],
                    \(updates.map { $0.1.lastSequence != nil })::boolean[],
                    \(updates.map { $0.1.lastSequence ?? 0 })::bigint[]) AS u(i, c, hl, l, hs, s)
                WHERE h.hold_id = u.i AND h.channel = u.c
                """,
                logger: logger
            )
        }
        if !deletes.isEmpty {
            try await connection.query("DELETE FROM hold WHERE id = ANY(\(deletes)::text[])", logger: logger)
        }
    }

    /// The records of one channel, of all, or (`orphansOf`) the not yet orphaned ones that an instance starting
    /// now takes over: its own node's earlier instances (see ``PostgreSQLStore/markOrphans(currentInstance:now:)``).
    static func fetch(
        _ connection: PostgresConnection,
        channel: String?,
        orphansOf instance: String?,
        logger: Logger
    ) async throws -> [HoldRecord] {
        let query: PostgresQuery
        if let instance {
            let node = Self.nodePrefix(of: instance)
            query = """
                SELECT id, instance, mode, route, client_address, started_at, timeout_at, keep_alive, links,
                    timeout_response, orphaned_at FROM hold
                WHERE instance <> \(instance) AND orphaned_at IS NULL
                    AND (\(node == nil) OR starts_with(instance, \(node.map { $0 + ":" } ?? "")))
                ORDER BY started_at, id
                """
        } else if let channel {
            query = """
                SELECT id, instance, mode, route, client_address, started_at, timeout_at, keep_alive, links,
                    timeout_response, orphaned_at FROM hold
                WHERE id IN (SELECT hold_id FROM hold_channel WHERE channel = \(channel)) ORDER BY started_at, id
                """
        } else {
            query = """
                SELECT id, instance, mode, route, client_address, started_at, timeout_at, keep_alive, links,
                    timeout_response, orphaned_at FROM hold ORDER BY started_at, id
                """
        }
        var holds: [HoldRecord] = []
        for try await row in try await connection.query(query, logger: logger) {
            let (
                id, instance, mode, route, clientAddress, startedAt, timeoutAt, keepAlive, links, timeoutResponse,
                orphanedAt
            ) = try row.decode(
                (
                    String, String, String, String?, String?, Int64, Int64?, ByteBuffer?, ByteBuffer?, ByteBuffer?,
                    Int64?
                ).self
            )
            holds.append(
                HoldRecord(
                    id: id,
                    instance: instance,
                    mode: HoldRecord.Mode(rawValue: mode) ?? .response,
                    route: route,
                    clientAddress: clientAddress,
                    channels: [],
                    startedAt: Date(storeMilliseconds: startedAt),
                    timeoutAt: timeoutAt.map { Date(storeMilliseconds: $0) },
                    keepAlive: keepAlive?.data,
                    links: links?.data,
                    timeoutResponse: timeoutResponse?.data,
                    orphanedAt: orphanedAt.map { Date(storeMilliseconds: $0) }
                )
            )
        }
        if holds.isEmpty {
            return []
        }
        var channels: [String: [HoldRecord.Channel]] = [:]
        for try await (holdID, name, lastId, lastSequence) in try await connection.query(
            """
            SELECT hold_id, channel, last_id, last_sequence FROM hold_channel
            WHERE hold_id = ANY(\(holds.map(\.id))::text[]) ORDER BY hold_id, position
            """,
            logger: logger
        ).decode((String, String, String?, Int64?).self) {
            channels[holdID, default: []].append(
                HoldRecord.Channel(name: name, lastId: lastId, lastSequence: lastSequence)
            )
        }
        return holds.map { hold in
            var hold = hold
            hold.channels = channels[hold.id] ?? []
            return hold
        }
    }

    /// The node part of an instance name `node:run` (nil when it has none).
    static func nodePrefix(of instance: String) -> String? {
        guard let colon = instance.lastIndex(of: ":") else { return nil }
        return String(instance[..<colon])
    }
}
