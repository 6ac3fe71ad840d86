import Foundation
import P8TestSupport
import Store
import Testing

/// `trim(channel:rule:)`, the operator's trim behind `p8ctl trim`.
@Suite struct ManualTrimTests {
    @Test func keepsTheNewestItemsOfOneChannelAndNeverReusesSequences() async throws {
        let directory = try TemporaryDirectory()
        let store = try await openStore(directory.path("p8.sqlite"))
        _ = try await store.append((1...5).map { item("a", "a\($0)", id: "a\($0)") })
        _ = try await store.append((1...3).map { item("b", "b\($0)") })

        let results = try await store.trim(channel: "a", rule: .keepNewest(2))
        #expect(
            results == [
                ChannelTrimResult(channel: "a", deletedItems: 3, deletedBytes: 6, throughSequence: 3, remainingItems: 2)
            ]
        )
        #expect(try await store.read(channel: "a", after: .oldestRetained).items?.map(\.id) == ["a4", "a5"])
        #expect(try await store.read(channel: "a", after: .sequence(1)).status == .olderThanRetained)
        #expect(try await store.read(channel: "b", after: .oldestRetained).items?.count == 3)
        #expect(try await store.append([item("a", "a6")]).map(\.sequence) == [6])
        #expect(try await store.channelSummaries(prefix: "a").first?.itemCount == 3)

        let nothing = try await store.trim(channel: "a", rule: .keepNewest(10))
        #expect(nothing.map(\.deletedItems) == [0])
        #expect(try await store.trim(channel: "unknown", rule: .keepNewest(0)).isEmpty)
    }

    @Test func removesItemsPublishedBeforeATimeInEveryChannel() async throws {
        let directory = try TemporaryDirectory()
        let store = try await openStore(directory.path("p8.sqlite"))
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try await store.append((0..<4).map { item("a", "a\($0)", at: start.addingTimeInterval(Double($0))) })
        _ = try await store.append((0..<2).map { item("b", "b\($0)", at: start.addingTimeInterval(10 + Double($0))) })

        let results = try await store.trim(channel: nil, rule: .publishedBefore(start.addingTimeInterval(2)))
        #expect(results.map(\.channel) == ["a", "b"])
        #expect(results.map(\.deletedItems) == [2, 0])
        #expect(try await store.read(channel: "a", after: .oldestRetained).items?.map(\.sequence) == [3, 4])

        let all = try await store.trim(channel: nil, rule: .keepNewest(0))
        #expect(all.map(\.deletedItems) == [2, 2])
        #expect(try await store.channelSummaries().map(\.lastSequence) == [4, 2])
        #expect(try await store.trim(channel: nil, rule: .keepNewest(0)).isEmpty)
    }

    @Test func refusesAReadOnlyStore() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let writer = try await openStore(path)
        _ = try await writer.append([item("a", "x")])
        let reader = try await ChannelStore.openReadOnly(path: path, logger: testLogger)
        let error = await #expect(throws: StoreError.self) {
            try await reader.trim(channel: nil, rule: .keepNewest(0))
        }
        #expect(error?.code == .readOnly)
    }
}
