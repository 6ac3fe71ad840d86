import Foundation
import GRIP
import P8TestSupport
import Store
import Synchronization
import Testing

@Suite struct RetentionTests {
    @Test func trimsByCountWithoutReusingSequences() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let store = try await openStore(path, retention: RetentionPolicy(maxItems: 5))
        _ = try await store.append((1...12).map { item("c", "item \($0)") })
        let summary = try await store.trim()
        #expect(summary.deletedItems == 7)
        #expect(summary.trimmedChannels == ["c"])
        #expect(
            try await store.read(channel: "c", after: .oldestRetained).items?.map(\.sequence) == [8, 9, 10, 11, 12]
        )
        #expect(try await store.read(channel: "c", after: .sequence(7)).items?.count == 5)
        #expect(try await store.read(channel: "c", after: .sequence(3)).status == .olderThanRetained)
        #expect(try await store.read(channel: "c", after: .sequence(0)).status == .olderThanRetained)
        #expect(try await store.read(channel: "c", after: .id("\(store.epoch)-2")).status == .olderThanRetained)
        #expect(try await store.read(channel: "c", after: .id("\(store.epoch)-13")).status == .unknownCursor)
        #expect(try await store.read(channel: "c", after: .id("gone")).status == .unknownCursor)
        #expect(try await store.oldest(channel: "c")?.text == "item 8")
        #expect(try await store.channelSummaries().first?.itemCount == 5)
        #expect(try await store.append([item("c", "next")]).first?.sequence == 13)
        // Trim everything: the sequence still goes on, after a restart as well.
        let empty = try await openStore(path, retention: RetentionPolicy(maxItems: 0))
        try await empty.trim()
        #expect(try await empty.channelSummaries().first?.itemCount == 0)
        #expect(try await empty.read(channel: "c", after: .sequence(13)).status == .found([]))
        #expect(try await empty.read(channel: "c", after: .sequence(12)).status == .olderThanRetained)
        #expect(try await empty.append([item("c", "after")]).first?.sequence == 14)
    }

    @Test func trimsByAgeAndBytesAndPrefix() async throws {
        let directory = try TemporaryDirectory()
        let now = Date()
        let store = try await openStore(
            directory.path("p8.sqlite"),
            retention: RetentionPolicy(maxItems: 1000, maxAgeSeconds: 3600, maxBytes: 1000),
            overrides: [
                .init(
                    channelPrefix: "small.",
                    policy: RetentionPolicy(maxItems: 1000, maxAgeSeconds: 3600, maxBytes: 25)
                )
            ]
        )
        _ = try await store.append([
            item("aged", "old1", at: now.addingTimeInterval(-7200)),
            item("aged", "old2", at: now.addingTimeInterval(-3700)),
            item("aged", "new1", at: now.addingTimeInterval(-10)),
        ])
        _ = try await store.append((0..<5).map { _ in item("small.x", "0123456789", at: now) })
        _ = try await store.append((0..<5).map { _ in item("big", "0123456789", at: now) })
        let summary = try await store.trim(now: now)
        #expect(summary.trimmedChannels == ["aged", "small.x"])
        #expect(try await store.read(channel: "aged", after: .oldestRetained).items?.map(\.text) == ["new1"])
        #expect(try await store.read(channel: "small.x", after: .oldestRetained).items?.map(\.sequence) == [4, 5])
        #expect(try await store.read(channel: "big", after: .oldestRetained).items?.count == 5)
    }

    @Test func trimsToTheGlobalBudgetOldestFirst() async throws {
        let directory = try TemporaryDirectory()
        let base = Date().addingTimeInterval(-100)
        let store = try await openStore(directory.path("p8.sqlite"), maxTotalBytes: 50)
        for index in 0..<10 {
            let channel = index % 2 == 0 ? "even" : "odd"
            _ = try await store.append([item(channel, "0123456789", at: base.addingTimeInterval(Double(index)))])
        }
        let summary = try await store.trim()
        #expect(summary.deletedItems == 5)
        #expect(summary.deletedBytes == 50)
        let total = try await store.channelSummaries().reduce(0) { $0 + $1.byteCount }
        #expect(total == 50)
        // The newest five (indices 5 to 9) are kept.
        #expect(try await store.read(channel: "even", after: .oldestRetained).items?.map(\.sequence) == [4, 5])
        #expect(try await store.read(channel: "odd", after: .oldestRetained).items?.map(\.sequence) == [3, 4, 5])
    }

    @Test func trimmingKeepsTheTailConsistent() async throws {
        let directory = try TemporaryDirectory()
        let store = try await openStore(directory.path("p8.sqlite"), retention: RetentionPolicy(maxItems: 3))
        _ = try await store.append((1...6).map { item("c", "item \($0)") })
        #expect(try await store.read(channel: "c", after: .sequence(1)).items?.count == 5)
        try await store.trim()
        #expect(try await store.read(channel: "c", after: .sequence(1)).status == .olderThanRetained)
        #expect(try await store.read(channel: "c", after: .sequence(3)).items?.map(\.sequence) == [4, 5, 6])
    }

    @Test func trimmingIsNotStarvedBySustainedAppends() async throws {
        let directory = try TemporaryDirectory()
        let store = try await openStore(directory.path("p8.sqlite"), retention: RetentionPolicy(maxItems: 5))
        // The appenders go on until the trims are done, each for at most `cap` appends: a trim starved by
        // sustained appends would only complete once they stop, so some appender would reach its cap first. The
        // bound counts appends, not time, so a loaded machine slows both sides alike. (Waiting its turn on the
        // writer queue, each of a trim's writes waits for at most one append per appender.)
        let cap = 2000
        let trimsDone = Flag()
        let capped = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for appender in 0..<16 {
                group.addTask {
                    var appended = 0
                    while !trimsDone.isSet {
                        guard appended < cap else {
                            capped.add()
                            return
                        }
                        _ = try await store.append([item("c\(appender % 4)", "x")])
                        appended += 1
                    }
                }
            }
            // The trims start once appends are under way.
            #expect(try await eventually { try await store.channelSummaries().count == 4 })
            for _ in 0..<3 {
                try await store.trim()
            }
            #expect(capped.count == 0)
            trimsDone.set()
            try await group.waitForAll()
        }
    }

    @Test func appendsProceedWhileTheRetentionServiceTrims() async throws {
        let directory = try TemporaryDirectory()
        let store = try await openStore(directory.path("p8.sqlite"), retention: RetentionPolicy(maxItems: 10))
        let service = RetentionService(store: store, interval: .milliseconds(5), logger: testLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            for index in 0..<300 {
                _ = try await store.append([item("c\(index % 3)", "item \(index)")])
            }
            // The service trims what the last appends added on its next pass: wait for it (bounded; it returns
            // as soon as every channel is down to its 10 items), not for a fixed time a loaded machine can outrun.
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                let counts = try await store.channelSummaries(prefix: "c").map(\.itemCount)
                if counts == [10, 10, 10] { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            group.cancelAll()
        }
        for channel in 0..<3 {
            let summary = try #require(try await store.channelSummaries(prefix: "c\(channel)").first)
            #expect(summary.lastSequence == 100)
            #expect(summary.itemCount == 10)
            #expect(summary.oldestSequence == 91)
        }
    }
}

/// A flag set once, read from other tasks.
private final class Flag: Sendable {
    private let value = Mutex(false)

    var isSet: Bool { self.value.withLock { $0 } }

    func set() {
        self.value.withLock { $0 = true }
    }
}

/// A count added to from other tasks.
private final class Tally: Sendable {
    private let value = Mutex(0)

    var count: Int { self.value.withLock { $0 } }

    func add() {
        self.value.withLock { $0 += 1 }
    }
}
