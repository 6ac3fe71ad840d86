import Foundation
import GRIP
import Store
import Synchronization
import Testing

/// Several nodes on one PostgreSQL database: one chain order per channel whichever node appends, and every node's
/// observer gets every item once, in log order, also when it missed the notifications.
@Suite struct MultiNodeStoreTests {
    /// Waits (up to 15 s) until `condition` holds.
    private func eventually(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while !condition() && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func nodesAppendingToOneChannelShareOneChainOrderAndEveryNodeDeliversEveryItemOnce() async throws {
        let database = try await TestDatabase(.postgresql)
        let url = try #require(database.url)
        let configuration = StoreConfiguration(databaseFile: "", reorderingWaitMilliseconds: 60_000)
        // Node C listens to nothing and relies on the periodic comparison alone: a missed notification is a delay.
        let nodes = [
            try await PostgreSQLStore.open(url: url, configuration: configuration, logger: testLogger),
            try await PostgreSQLStore.open(url: url, configuration: configuration, logger: testLogger),
            try await PostgreSQLStore.open(
                url: url,
                configuration: configuration,
                logger: testLogger,
                listens: false,
                followInterval: .milliseconds(200)
            ),
        ]
        defer {
            for node in nodes {
                node.close()
            }
        }
        #expect(Set(nodes.map(\.epoch)).count == 1)
        let seen = nodes.map { _ in DeliveryLog() }
        for (node, log) in zip(nodes, seen) {
            node.observeCommits { batch in
                log.entries.withLock { $0 += batch.logged.map { "\($0.stored.sequence):\($0.stored.id)" } }
            }
        }
        // 60 chained items, published in shuffled batches of 5 through the three nodes, concurrently.
        let count = 60
        let items = (1...count).map { index in
            NewItem(
                channel: "c",
                id: "i\(index)",
                prevId: index > 1 ? "i\(index - 1)" : nil,
                formats: Data("\(index)".utf8)
            )
        }
        // The chain's first item starts the channel's chain position; the rest arrive in any order.
        _ = try await nodes[0].append([items[0]])
        var batches = stride(from: 1, to: count, by: 5).map { Array(items[$0..<min($0 + 5, count)]) }
        batches.shuffle()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, batch) in batches.enumerated() {
                let node = nodes[index % nodes.count]
                group.addTask { _ = try await node.append(batch) }
            }
            try await group.waitForAll()
        }
        let expected = (1...count).map { "\($0):i\($0)" }
        let read = try await nodes[1].read(channel: "c", after: .sequence(0), limit: 1000).items ?? []
        #expect(read.map { "\($0.sequence):\($0.id)" } == expected)
        for (index, log) in seen.enumerated() {
            try await self.eventually { log.entries.withLock { $0.count } >= count }
            #expect(log.entries.withLock { $0 } == expected, "node \(index)")
        }
        #expect(nodes.allSatisfy { $0.lastLoggedSequence(channel: "c") == Int64(count) })
        // Duplicates through another node are duplicates.
        #expect(try await nodes[2].append([items[3]]).map(\.isDuplicate) == [true])
    }

    @Test func aNodeThatStartsLaterDeliversOnlyWhatIsCommittedAfterItStarted() async throws {
        let database = try await TestDatabase(.postgresql)
        let url = try #require(database.url)
        let configuration = StoreConfiguration(databaseFile: "")
        let first = try await PostgreSQLStore.open(url: url, configuration: configuration, logger: testLogger)
        defer { first.close() }
        _ = try await first.append([item("c", "before")])
        let later = try await PostgreSQLStore.open(url: url, configuration: configuration, logger: testLogger)
        defer { later.close() }
        #expect(later.lastLoggedSequence(channel: "c") == 1)
        let seen = Mutex<[String]>([])
        later.observeCommits { batch in seen.withLock { $0 += batch.logged.map(\.stored.text) } }
        _ = try await first.append([item("c", "after"), item("d", "new channel")])
        try await self.eventually { seen.withLock { $0.count } >= 2 }
        #expect(seen.withLock { $0 }.sorted() == ["after", "new channel"])
    }
}

/// What one node's observer was given.
final class DeliveryLog: Sendable {
    let entries = Mutex<[String]>([])
}
