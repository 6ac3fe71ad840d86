import Foundation
import GRDB
import GRIP
import P8TestSupport
import Store
import Testing

@Suite struct ItemMetaTests {
    private static let meta = PublishItem.storedMetaJSON(["sender": "alice", "skip_users": "bob, carol"]).map {
        Data($0)
    }

    @Test func metaRoundTripsThroughTheTailAndTheDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let store = try await openStore(path)
        _ = try await store.append([
            NewItem(channel: "c", id: "1", formats: Data("one".utf8), meta: Self.meta),
            NewItem(channel: "c", id: "2", prevId: "1", formats: Data("two".utf8)),
        ])
        // The writer's own tail answers this read.
        let fromTail = try #require(try await store.read(channel: "c", after: .oldestRetained).items)
        #expect(fromTail.map(\.meta) == [Self.meta, nil])
        // Another connection has no tail: the read goes to the file.
        let reader = try await ChannelStore.openReadOnly(path: path, logger: testLogger)
        let fromFile = try #require(try await reader.read(channel: "c", after: .oldestRetained).items)
        #expect(fromFile.map(\.meta) == [Self.meta, nil])
        let decoded = try #require(fromFile[0].meta.flatMap { PublishItem.meta(storedJSON: Array($0)) })
        #expect(decoded == ["sender": "alice", "skip_users": "bob, carol"])
        #expect(fromFile[0].size == 3 + (Self.meta?.count ?? 0))
    }

    @Test func itemsAppendedBeforeMetaWasKeptReadWithNone() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let queue = try DatabaseQueue(path: path)
        try StoreMigrations.migrator(upTo: "0001_initial").migrate(queue)
        try await queue.write { db in
            try db.execute(
                sql: "INSERT INTO channel (name, lastSequence, itemCount, byteCount) VALUES ('old', 1, 1, 3)"
            )
            try db.execute(
                sql: """
                    INSERT INTO item (channelId, sequence, itemId, isAssignedId, prevId, formats, size, publishedAt)
                    VALUES (1, 1, 'x1', 0, NULL, 'old', 3, 0)
                    """
            )
        }
        try queue.close()
        let store = try await openStore(path)
        let items = try #require(try await store.read(channel: "old", after: .oldestRetained).items)
        #expect(items.map(\.id) == ["x1"])
        #expect(items.map(\.meta) == [nil])
    }

    @Test func storedMetaIsAnObjectOfStrings() {
        #expect(PublishItem.storedMetaJSON([:]) == nil)
        #expect(
            PublishItem.storedMetaJSON(["b": "2", "a": "\"1\""]).map { String(decoding: $0, as: UTF8.self) }
                == #"{"a":"\"1\"","b":"2"}"#
        )
        #expect(PublishItem.meta(storedJSON: Array(#"{"a":1}"#.utf8)) == nil)
        #expect(PublishItem.meta(storedJSON: Array("[]".utf8)) == nil)
    }
}
