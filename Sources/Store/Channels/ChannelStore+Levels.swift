import GRDB
package import Synchronization

/// What the store holds, for the metrics endpoint and the status page.
package struct StoreLevels: Sendable, Hashable {
    /// Sum of retained item sizes.
    package var bytes: Int
    /// Retained items.
    package var items: Int
    /// Channels ever published to (kept when all their items are trimmed).
    package var channels: Int
}

/// Where ``ChannelStore/read(channel:after:limit:)`` found what it returned.
package final class ReadSources: Sendable {
    /// Reads answered from the newest items kept in memory.
    package let memory = Atomic<Int>(0)
    /// Reads that went to the database.
    package let database = Atomic<Int>(0)

    package init() {}

    func count(fromMemory: Bool) {
        if fromMemory {
            self.memory.add(1, ordering: .relaxed)
        } else {
            self.database.add(1, ordering: .relaxed)
        }
    }
}

extension ChannelStore {
    /// The totals of the channel table (maintained with every append and trim, so this is one small scan).
    package func levels() async throws -> StoreLevels {
        try await self.pool.read { db in
            let row = try Row.fetchOne(
                db,
                sql: "SELECT COALESCE(SUM(byteCount), 0) AS bytes, COALESCE(SUM(itemCount), 0) AS items, "
                    + "COUNT(*) AS channels FROM channel"
            )
            return StoreLevels(bytes: row?["bytes"] ?? 0, items: row?["items"] ?? 0, channels: row?["channels"] ?? 0)
        }
    }
}
