import Foundation
import GRIP
import Store
import Synchronization
import Testing

/// The Store's behaviour, once per backend: both must give the same answers.
@Suite struct SharedStoreTests {
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

    private func ids(
        _ store: any ChannelLogStore,
        after cursor: Cursor = .sequence(0),
        channel: String = "c"
    )
        async throws -> [String]
    {
        try await store.read(channel: channel, after: cursor, limit: 1000).items?.map(\.id) ?? []
    }

    private func configuration(
        retention: RetentionPolicy = RetentionPolicy(),
        maxTotalBytes: Int = 1_000_000_000,
        wait: Int = 60_000
    ) -> StoreConfiguration {
        StoreConfiguration(
            databaseFile: "",
            defaultRetention: retention,
            maxTotalBytes: maxTotalBytes,
            reorderingWaitMilliseconds: wait
        )
    }

    @Test(arguments: StoreBackend.allCases)
    func appendsReadsAndCursors(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open()
        let published = Date(timeIntervalSince1970: 1_700_000_000.123)
        let results = try await store.append(
            [item("a", "a1"), item("b", "b1")]
                + (1...10).map {
                    NewItem(
                        channel: "c",
                        id: "id\($0)",
                        prevId: $0 > 1 ? "id\($0 - 1)" : nil,
                        formats: Data("item \($0)".utf8),
                        publishedAt: published
                    )
                }
        )
        #expect(results.prefix(2).map(\.id) == ["\(store.epoch)-1", "\(store.epoch)-1"])
        #expect(results.dropFirst(2).map(\.sequence) == Array(1...10))
        let afterThree = try await store.read(channel: "c", after: .sequence(3), limit: 4)
        #expect(afterThree.epoch == store.epoch)
        #expect(afterThree.lastSequence == 10)
        #expect(afterThree.items?.map(\.sequence) == [4, 5, 6, 7])
        let first = try #require(afterThree.items?.first)
        #expect(first.id == "id4")
        #expect(first.prevId == "id3")
        #expect(first.text == "item 4")
        #expect(first.size == 6)
        #expect(first.publishedAt == published)
        #expect(
            try await store.read(channel: "c", after: .id("id8"), limit: 1000).items?.map(\.text) == [
                "item 9", "item 10",
            ]
        )
        #expect(try await store.read(channel: "c", after: .oldestRetained, limit: 1000).items?.count == 10)
        #expect(try await store.read(channel: "c", after: .sequence(10), limit: 1000).status == .found([]))
        #expect(try await store.read(channel: "c", after: .sequence(11), limit: 1000).status == .unknownCursor)
        #expect(try await store.read(channel: "c", after: .id("nope"), limit: 1000).status == .unknownCursor)
        #expect(try await store.read(channel: "c", after: .sequence(-1), limit: 1000).status == .unknownCursor)
        #expect(try await store.read(channel: "other", after: .sequence(0), limit: 1000).status == .found([]))
        #expect(try await store.read(channel: "other", after: .id("id1"), limit: 1000).status == .unknownCursor)
        #expect(try await store.oldest(channel: "c")?.sequence == 1)
        #expect(try await store.newest(channel: "c")?.sequence == 10)
        #expect(try await store.newest(channel: "other") == nil)
        let summaries = try await store.channelSummaries(prefix: "")
        #expect(summaries.map(\.name) == ["a", "b", "c"])
        #expect(
            summaries[2] == ChannelSummary(name: "c", lastSequence: 10, oldestSequence: 1, itemCount: 10, byteCount: 61)
        )
        #expect(try await store.channelSummaries(prefix: "b").map(\.name) == ["b"])
    }

    @Test(arguments: StoreBackend.allCases)
    func resentIdsAreNotAppendedTwiceAcrossReopens(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open()
        #expect(
            try await store.append([item("c", "one", id: "x"), item("c", "two", id: "y")]).map(\.sequence) == [1, 2]
        )
        let again = try await store.append([item("c", "one again", id: "x"), item("d", "other channel", id: "x")])
        #expect(again[0] == AppendResult(channel: "c", sequence: 1, id: "x", isDuplicate: true))
        #expect(again[1] == AppendResult(channel: "d", sequence: 1, id: "x", isDuplicate: false))
        let sameCall = try await store.append([item("c", "three", id: "z"), item("c", "three again", id: "z")])
        #expect(sameCall.map(\.sequence) == [3, 3])
        #expect(sameCall.map(\.isDuplicate) == [false, true])
        let reopened = try await database.open()
        #expect(reopened.epoch == store.epoch)
        #expect(try await reopened.append([item("c", "two again", id: "y")]).first?.isDuplicate == true)
        #expect(try await reopened.append([item("c", "four")]).first?.sequence == 4)
        // A publisher takes the id the store would give the next item.
        _ = try await reopened.append([item("c", "five", id: "\(store.epoch)-6")])
        let sixth = try await reopened.append([item("c", "six")])
        #expect(sixth[0].sequence == 6)
        #expect(sixth[0].id != "\(store.epoch)-6")
        #expect(try await reopened.append([item("c", "six again", id: sixth[0].id)]).first?.isDuplicate == true)
    }

    /// The observer runs at one stack depth however many commits came before: an observer kept so that each read
    /// wraps it again (issue 12: a closure read out of a `Mutex`) made every commit one frame pair deeper and the
    /// cost of a commit grow with the commits before it. The depth count stops at 128 frames, well above this
    /// spread.
    @Test(arguments: StoreBackend.allCases)
    func commitObserverRunsAtOneDepth(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open(self.configuration())
        let depths = Mutex<[Int]>([])
        store.observeCommits { _ in
            depths.withLock { $0.append(Thread.callStackReturnAddresses.count) }
        }
        for number in 1...60 {
            _ = try await store.append([item("c", "item \(number)")])
        }
        let recorded = depths.withLock { $0 }
        // At least one call per commit (PostgreSQL's follower may hand over a commit's items in two calls).
        #expect(recorded.count >= 60)
        #expect((recorded.max() ?? 0) - (recorded.min() ?? 0) < 20, "depths: \(recorded)")
    }

    @Test(arguments: StoreBackend.allCases)
    func itemsEnterTheLogInChainOrder(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open(self.configuration())
        let seen = Mutex<[String]>([])
        store.observeCommits { batch in
            seen.withLock { $0 += batch.logged.map(\.stored.id) }
        }
        _ = try await store.append(self.chain(1, 1))
        for (first, last) in [(32, 41), (12, 21), (22, 31), (2, 11)] {
            _ = try await store.append(self.chain(first, last))
        }
        #expect(try await self.ids(store) == (1...41).map { "i\($0)" })
        #expect(try await self.ids(store, after: .id("i26")) == (27...41).map { "i\($0)" })
        #expect(
            try await store.read(channel: "c", after: .sequence(0), limit: 100).items?.map(\.sequence) == Array(1...41)
        )
        #expect(seen.withLock { $0 } == (1...41).map { "i\($0)" })
        // A waiting item resent is a duplicate.
        _ = try await store.append(self.chain(43, 43))
        #expect(try await store.append(self.chain(43, 43)).map(\.isDuplicate) == [true])
        // Waiting items survive a reopen.
        let reopened = try await database.open(self.configuration())
        _ = try await reopened.append(self.chain(42, 42))
        #expect(try await self.ids(reopened).suffix(2) == ["i42", "i43"])
    }

    @Test(arguments: StoreBackend.allCases)
    func waitsEndAndSpecialItemsDoNotWait(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        // A wait far longer than the appends below take, however loaded the machine.
        let store = try await database.open(self.configuration(wait: 60_000))
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
        #expect(try await self.ids(store) == ["i1"], "the wait is not over yet")
        try await store.releaseWaitingItems(now: Date().addingTimeInterval(61))
        #expect(try await self.ids(store) == ["i1", "i4", "i5", "x3"])
        #expect(released.withLock { $0 } == ["i4", "x3"])
        var noSeq = NewItem(channel: "c", id: "n", prevId: "elsewhere", formats: Data())
        noSeq.bypassesReordering = true
        #expect(try await store.append([noSeq]).map(\.sequence) == [5])
        #expect(
            try await store.append([NewItem(channel: "c", id: "y", prevId: "x3", formats: Data())]).map(\.sequence) == [
                6
            ]
        )
        try await store.forgetChainPositions()
        #expect(try await store.append(self.chain(9, 9)).map(\.sequence) == [7])
        // Past the buffer's limit, or on a second branch, an item enters at once.
        let gaps = (0..<100).map { NewItem(channel: "d", id: "g\($0)", prevId: "missing\($0)", formats: Data()) }
        _ = try await store.append(self.chain(1, 1, channel: "d"))
        #expect(try await store.append(gaps).allSatisfy(\.isWaiting))
        #expect(
            try await store.append([NewItem(channel: "d", id: "o", prevId: "m", formats: Data())]).map(\.sequence) == [
                2
            ]
        )
        #expect(
            try await store.append([NewItem(channel: "d", id: "b", prevId: "missing0", formats: Data())]).map(
                \.sequence
            ) == [3]
        )
    }

    @Test(arguments: StoreBackend.allCases)
    func itemMetaIsKeptInTheLogTheReorderingBufferAndAcrossReopens(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open(self.configuration())
        let meta = Data(#"{"sender":"alice","skip_users":"bob"}"#.utf8)
        let other = Data(#"{"require_sub":"x"}"#.utf8)
        _ = try await store.append([
            NewItem(channel: "c", id: "i1", formats: Data("one".utf8), meta: meta),
            NewItem(channel: "c", id: "i2", prevId: "i1", formats: Data("two".utf8)),
        ])
        // i4 waits for i3 in the reordering buffer: its meta must survive the wait, and a reopen.
        let waiting = try await store.append([
            NewItem(channel: "c", id: "i4", prevId: "i3", formats: Data("four".utf8), meta: other)
        ])
        #expect(waiting.first?.isWaiting == true)
        let reopened = try await database.open(self.configuration())
        _ = try await reopened.append([NewItem(channel: "c", id: "i3", prevId: "i2", formats: Data("three".utf8))])
        let items = try #require(try await reopened.read(channel: "c", after: .oldestRetained, limit: 1000).items)
        #expect(items.map(\.id) == ["i1", "i2", "i3", "i4"])
        #expect(items.map(\.meta) == [meta, nil, nil, other])
        #expect(items[0].size == 3 + meta.count)
        #expect(try await reopened.newest(channel: "c")?.meta == other)
        #expect(try await reopened.oldest(channel: "c")?.meta == meta)
    }

    @Test(arguments: StoreBackend.allCases)
    func levelsAndHoldStatusForTheStatusPageAndMetrics(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open()
        _ = try await store.append(self.chain(1, 5) + [item("b", "12345")])
        let levels = try await store.levels()
        #expect(levels.channels == 2)
        #expect(levels.items == 6)
        #expect(levels.bytes == 5 + 5)
        try await store.recordHolds(
            upserts: [
                HoldRecord(
                    id: "h1",
                    instance: "me",
                    mode: .stream,
                    channels: [HoldRecord.Channel(name: "c", lastId: "i2", lastSequence: 2)]
                ),
                HoldRecord(id: "h2", instance: "me", mode: .response, channels: [HoldRecord.Channel(name: "b")]),
                HoldRecord(id: "h3", instance: "other", mode: .stream, channels: []),
            ],
            deletes: []
        )
        #expect(try await store.holdCounts(instance: "me") == ["stream": 1, "response": 1])
        let behind = try await store.holdsFurthestBehind(instance: "me", limit: 10)
        #expect(behind.map { "\($0.holdID) \($0.mode) \($0.channel) \($0.behind)" } == ["h1 stream c 3"])
        #expect(store.configuration.defaultRetention.maxItems == RetentionPolicy().maxItems)
    }

    @Test(arguments: StoreBackend.allCases)
    func retentionByCountAgeAndBudget(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let now = Date()
        let store = try await database.open(
            self.configuration(retention: RetentionPolicy(maxItems: 5, maxAgeSeconds: 3600, maxBytes: 1000))
        )
        _ = try await store.append((1...12).map { item("c", "item \($0)") })
        _ = try await store.append([
            item("aged", "old1", at: now.addingTimeInterval(-7200)),
            item("aged", "new1", at: now.addingTimeInterval(-10)),
        ])
        let summary = try await store.trim(now: now)
        #expect(summary.deletedItems == 8)
        #expect(summary.trimmedChannels == ["c", "aged"])
        #expect(
            try await store.read(channel: "c", after: .oldestRetained, limit: 100).items?.map(\.sequence) == [
                8, 9, 10, 11, 12,
            ]
        )
        #expect(try await store.read(channel: "c", after: .sequence(3), limit: 100).status == .olderThanRetained)
        #expect(
            try await store.read(channel: "c", after: .id("\(store.epoch)-2"), limit: 100).status == .olderThanRetained
        )
        #expect(
            try await store.read(channel: "aged", after: .oldestRetained, limit: 100).items?.map(\.text) == ["new1"]
        )
        #expect(try await store.append([item("c", "next")]).first?.sequence == 13)
        let budget = try await database.open(self.configuration(maxTotalBytes: 20))
        let trimmed = try await budget.trim(now: now)
        #expect(trimmed.deletedItems == 4)
        let remaining = try await budget.channelSummaries(prefix: "").map(\.byteCount).reduce(0, +)
        #expect(remaining <= 20)
        #expect(
            try await budget.read(channel: "c", after: .oldestRetained, limit: 100).items?.map(\.sequence) == [12, 13]
        )
    }

    @Test(arguments: StoreBackend.allCases)
    func holdRecordsAndOrphans(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open()
        func hold(_ id: String, _ instance: String, _ channels: [String]) -> HoldRecord {
            HoldRecord(
                id: id,
                instance: instance,
                mode: .stream,
                route: "api",
                clientAddress: "192.0.2.1:4000",
                channels: channels.map { HoldRecord.Channel(name: $0, lastId: "\($0)-last", lastSequence: 7) },
                startedAt: Date(timeIntervalSince1970: 1_700_000_000),
                timeoutAt: Date(timeIntervalSince1970: 1_700_000_055.5),
                keepAlive: Data("{\"timeout\":30}".utf8),
                links: nil,
                timeoutResponse: Data("{\"code\":304}".utf8)
            )
        }
        let first = hold("h1", "old", ["a", "b"])
        let second = hold("h2", "old", ["b"])
        try await store.recordHolds(upserts: [first, second], deletes: [])
        #expect(try await store.holds(channel: nil) == [first, second])
        #expect(try await store.holds(channel: "a") == [first])
        var moved = first
        moved.channels = [HoldRecord.Channel(name: "c", lastId: nil, lastSequence: nil)]
        try await store.recordHolds(upserts: [moved], deletes: ["h2"])
        #expect(try await store.holds(channel: nil) == [moved])
        try await store.recordHolds(upserts: [second], deletes: [])
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let orphans = try await store.markOrphans(currentInstance: "new", now: now)
        #expect(orphans.map(\.id) == ["h1", "h2"])
        #expect(orphans.allSatisfy { $0.orphanedAt == now })
        #expect(try await store.markOrphans(currentInstance: "new", now: now).isEmpty)
        #expect(try await store.deleteOrphans() == 2)
        #expect(try await store.holds(channel: nil).isEmpty)
    }

    @Test(arguments: StoreBackend.allCases)
    func holdPositionsUpdateTheChannelsOfLiveRecordsOnly(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open()
        let live = HoldRecord(
            id: "live",
            instance: "i",
            mode: .stream,
            channels: [HoldRecord.Channel(name: "a", lastId: "a1"), HoldRecord.Channel(name: "b")],
            startedAt: Date(timeIntervalSince1970: 1_700_000_000)
        )
        var ended = live
        ended.id = "ended"
        try await store.recordHolds(upserts: [live, ended], deletes: [])
        try await store.recordHolds(upserts: [], deletes: ["ended"])
        try store.enqueueHoldPositions([
            HoldPositions(
                holdID: "live",
                channels: [
                    HoldRecord.Channel(name: "a", lastId: "a9", lastSequence: 9),
                    HoldRecord.Channel(name: "b", lastId: nil, lastSequence: 4),
                    HoldRecord.Channel(name: "not-recorded", lastId: "x", lastSequence: 1),
                ]
            ),
            HoldPositions(holdID: "ended", channels: [HoldRecord.Channel(name: "a", lastId: "a9", lastSequence: 9)]),
        ])
        // A write queued after the positions: once it is committed, so are they.
        var marker = live
        marker.id = "marker"
        try await store.recordHolds(upserts: [marker], deletes: [])
        var expected = live
        expected.channels = [
            HoldRecord.Channel(name: "a", lastId: "a9", lastSequence: 9),
            HoldRecord.Channel(name: "b", lastId: nil, lastSequence: 4),
        ]
        #expect(try await store.holds(channel: nil) == [expected, marker])
    }

    @Test(arguments: StoreBackend.allCases)
    func concurrentAppendersGetDistinctOrderedSequences(_ backend: StoreBackend) async throws {
        let database = try await TestDatabase(backend)
        let store = try await database.open(self.configuration(retention: RetentionPolicy(maxItems: 100_000)))
        let sequences = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for appender in 0..<16 {
                group.addTask {
                    var sequences: [Int64] = []
                    for index in 0..<20 {
                        sequences.append(try await store.append([item("shared", "\(appender) \(index)")])[0].sequence)
                    }
                    return sequences
                }
            }
            return try await group.reduce(into: [[Int64]]()) { $0.append($1) }
        }
        #expect(sequences.allSatisfy { $0 == $0.sorted() })
        #expect(sequences.joined().sorted() == Array(1...320))
    }
}
