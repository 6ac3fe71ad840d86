import Foundation
import GRIP
import P8TestSupport
import Store
import Synchronization
import Testing

/// The store's reordering buffer, event by event: items enter a channel's log in `prev-id` chain order, whatever
/// order they were committed in, and items that wait for a predecessor are durable.
@Suite struct ReorderingBufferTests {
    /// `c` items `first...last`, each chained to the one before.
    private func chain(_ first: Int, _ last: Int, channel: String = "c") -> [NewItem] {
        (first...last).map { index in
            NewItem(
                channel: channel,
                id: "i\(index)",
                prevId: index > 1 ? "i\(index - 1)" : nil,
                formats: Data("\(index)".utf8)
            )
        }
    }

    private func ids(after cursor: Cursor, in store: ChannelStore, channel: String = "c") async throws -> [String] {
        try await store.read(channel: channel, after: cursor, limit: 1000).items?.map(\.id) ?? []
    }

    private func openStore(_ path: String, wait: Int = 60_000) async throws -> ChannelStore {
        try await ChannelStore.open(
            configuration: StoreConfiguration(databaseFile: path, reorderingWaitMilliseconds: wait),
            logger: testLogger
        )
    }

    @Test func anItemAheadOfItsPredecessorWaitsThenEntersTheLogAfterIt() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        _ = try await store.append(self.chain(1, 1))
        let early = try await store.append(self.chain(3, 3))
        #expect(early == [AppendResult(channel: "c", sequence: 0, id: "i3", isDuplicate: false, isWaiting: true)])
        #expect(try await self.ids(after: .sequence(0), in: store) == ["i1"])
        #expect(store.hasWaitingItems)
        let missing = try await store.append(self.chain(2, 2))
        #expect(missing.map(\.sequence) == [2])
        #expect(try await self.ids(after: .sequence(0), in: store) == ["i1", "i2", "i3"])
        #expect(!store.hasWaitingItems)
    }

    /// The issue's scenario: forty chained items in four requests sent out of order; the log holds the chain's
    /// order, so a client resuming from any id reads what a live subscriber was sent after it.
    @Test func batchesSentOutOfOrderAreLoggedInChainOrder() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        _ = try await store.append(self.chain(1, 1))
        for (first, last) in [(32, 41), (12, 21), (22, 31), (2, 11)] {
            _ = try await store.append(self.chain(first, last))
        }
        #expect(try await self.ids(after: .sequence(0), in: store) == (1...41).map { "i\($0)" })
        #expect(try await self.ids(after: .id("i11"), in: store) == (12...41).map { "i\($0)" })
        #expect(try await self.ids(after: .id("i26"), in: store) == (27...41).map { "i\($0)" })
        let sequences = try await store.read(channel: "c", after: .sequence(0)).items?.map(\.sequence)
        #expect(sequences == Array(1...41))
    }

    @Test func theObserverGetsItemsInLogOrderWithTheirContexts() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        let seen = Mutex<[String]>([])
        store.observeCommits { batch in
            seen.withLock { $0 += batch.logged.map { "\($0.stored.id):\($0.context as? String ?? "-")" } }
        }
        var items = self.chain(1, 3)
        for index in items.indices {
            items[index].context = "ctx\(index + 1)"
        }
        _ = try await store.append([items[0]])
        _ = try await store.append([items[2]])
        _ = try await store.append([items[1]])
        #expect(seen.withLock { $0 } == ["i1:ctx1", "i2:ctx2", "i3:ctx3"])
    }

    @Test func aWaitingItemResentIsADuplicate() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        _ = try await store.append(self.chain(1, 1))
        _ = try await store.append(self.chain(3, 3))
        let again = try await store.append(self.chain(3, 3))
        #expect(again.map(\.isDuplicate) == [true])
        _ = try await store.append(self.chain(2, 2))
        #expect(try await self.ids(after: .sequence(0), in: store) == ["i1", "i2", "i3"])
    }

    @Test func whenTheWaitEndsItemsEnterTheLogInArrivalOrderWithTheirSuccessors() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"), wait: 60_000)
        let released = Mutex<[String]>([])
        store.observeCommits { batch in
            released.withLock { $0 += batch.logged.filter(\.releasedAfterWait).map(\.stored.id) }
        }
        _ = try await store.append(self.chain(1, 1))
        // Before the items are received: however long the appends take on a loaded machine, their wait is not over.
        let beforeReceipt = Date()
        _ = try await store.append(self.chain(4, 5))  // i3 never comes; i5 waits behind i4
        _ = try await store.append([NewItem(channel: "c", id: "x3", prevId: "x2", formats: Data())])
        try await store.releaseWaitingItems(now: beforeReceipt)
        #expect(try await self.ids(after: .sequence(0), in: store) == ["i1"], "the wait is not over yet")
        try await store.releaseWaitingItems(now: Date().addingTimeInterval(120))
        #expect(try await self.ids(after: .sequence(0), in: store) == ["i1", "i4", "i5", "x3"])
        #expect(released.withLock { $0 } == ["i4", "x3"])
        #expect(!store.hasWaitingItems)
    }

    @Test func waitingItemsSurviveAReopenAndTheWaitCountsFromWhenTheyWereReceived() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        do {
            let store = try await self.openStore(path)
            _ = try await store.append(self.chain(1, 1))
            _ = try await store.append(self.chain(3, 4))
        }
        let reopened = try await self.openStore(path)
        #expect(reopened.hasWaitingItems)
        let contexts = Mutex<[Bool]>([])
        reopened.observeCommits { batch in
            contexts.withLock { $0 += batch.logged.map { $0.context == nil } }
        }
        #expect(try await reopened.append(self.chain(3, 3)).map(\.isDuplicate) == [true])
        var missing = self.chain(2, 2)
        missing[0].context = "new"
        _ = try await reopened.append(missing)
        #expect(try await self.ids(after: .sequence(0), in: reopened) == ["i1", "i2", "i3", "i4"])
        #expect(contexts.withLock { $0 } == [false, true, true], "items from the earlier process carry no context")
    }

    @Test func noSeqAndIdLessItemsDoNotWait() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        _ = try await store.append(self.chain(1, 1))
        var noSeq = self.chain(3, 3)[0]
        noSeq.bypassesReordering = true
        #expect(try await store.append([noSeq]).map(\.sequence) == [2])
        // no-seq left the chain at i1: i2 follows it at once.
        #expect(try await store.append(self.chain(2, 2)).map(\.sequence) == [3])
        // An item without id clears the chain position: the next item enters whatever its prev-id.
        _ = try await store.append([NewItem(channel: "c", prevId: "i2", formats: Data("anonymous".utf8))])
        #expect(try await store.append(self.chain(9, 9)).map(\.sequence) == [5])
    }

    @Test func pastTheLimitOrOnASecondBranchAnItemEntersTheLogAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        _ = try await store.append(self.chain(1, 1))
        let gaps = (0..<100).map { NewItem(channel: "c", id: "g\($0)", prevId: "missing\($0)", formats: Data()) }
        #expect(try await store.append(gaps).allSatisfy(\.isWaiting))
        let overflow = NewItem(channel: "c", id: "over", prevId: "missing-too", formats: Data())
        #expect(try await store.append([overflow]).map(\.sequence) == [2])
        let branch = NewItem(channel: "c", id: "branch", prevId: "missing0", formats: Data())
        #expect(try await store.append([branch]).map(\.sequence) == [3])
    }

    @Test func forgettingChainPositionsLetsTheNextItemInAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        _ = try await store.append(self.chain(1, 1))
        try await store.forgetChainPositions()
        #expect(try await store.append(self.chain(7, 7)).map(\.sequence) == [2])
    }

    @Test func channelsDoNotWaitForEachOther() async throws {
        let directory = try TemporaryDirectory()
        let store = try await self.openStore(directory.path("p8.sqlite"))
        _ = try await store.append(self.chain(1, 1, channel: "a") + self.chain(1, 1, channel: "b"))
        _ = try await store.append(self.chain(3, 3, channel: "a"))
        #expect(try await store.append(self.chain(2, 2, channel: "b")).map(\.sequence) == [2])
        #expect(try await self.ids(after: .sequence(0), in: store, channel: "a") == ["i1"])
    }
}
