import Foundation
import P8TestSupport
import Store
import Testing

@Suite struct HoldRecordTests {
    func hold(_ id: String, instance: String, channels: [String]) -> HoldRecord {
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
            links: Data("{\"next\":\"/next\"}".utf8),
            timeoutResponse: Data("{\"code\":304}".utf8)
        )
    }

    @Test func insertsUpdatesListsAndDeletes() async throws {
        let directory = try TemporaryDirectory()
        let store = try await openStore(directory.path("p8.sqlite"))
        let first = self.hold("h1", instance: "i1", channels: ["a", "b"])
        let second = self.hold("h2", instance: "i1", channels: ["b"])
        try await store.recordHolds(upserts: [first, second])
        #expect(try await store.holds() == [first, second])
        #expect(try await store.holds(channel: "a") == [first])
        #expect(try await store.holds(channel: "b").map(\.id) == ["h1", "h2"])

        var moved = first
        moved.channels = [HoldRecord.Channel(name: "c", lastId: "x", lastSequence: 9)]
        moved.mode = .response
        try await store.recordHolds(upserts: [moved], deletes: ["h2"])
        #expect(try await store.holds() == [moved])
        #expect(try await store.holds(channel: "a").isEmpty)

        // Fire-and-forget writes are committed with the next commit, in order.
        try store.enqueueHolds(upserts: [second])
        try store.enqueueHolds(upserts: [], deletes: ["h1"])
        _ = try await store.append([item("c", "flush")])
        #expect(try await store.holds() == [second])
    }

    @Test func recordsOfAPreviousInstanceBecomeOrphans() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let before = try await openStore(path)
        try await before.recordHolds(upserts: [
            self.hold("h1", instance: "old", channels: ["a"]), self.hold("h2", instance: "old", channels: ["b"]),
        ])
        let restarted = try await openStore(path)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let orphans = try await restarted.markOrphans(currentInstance: "new", now: now)
        #expect(orphans.map(\.id) == ["h1", "h2"])
        #expect(orphans.allSatisfy { $0.orphanedAt == now })
        try await restarted.recordHolds(upserts: [self.hold("h3", instance: "new", channels: ["a"])])
        // Kept for inspection, marked once.
        let listed = try await restarted.holds()
        #expect(listed.map(\.id) == ["h1", "h2", "h3"])
        #expect(listed.map { $0.orphanedAt != nil } == [true, true, false])
        #expect(try await restarted.markOrphans(currentInstance: "new").isEmpty)
        #expect(try await restarted.deleteOrphans() == 2)
        #expect(try await restarted.holds().map(\.id) == ["h3"])
    }
}
