import Foundation
import Logging
import P8TestSupport
import Store
import Testing

/// Held-request records follow where each client is (within about a second): the id and sequence of the last item
/// delivered on each channel, so that `p8ctl held` reports how far a client is behind, and a server that takes a
/// client over continues from there.
@Suite struct HoldRecordPositionTests {
    @Test func aStreamsRecordMovesToTheLastItemDeliveredFromItsPrevID() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            _ = try await publish(p8, Self.chained("hc", 1...1))
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath(
                [("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", "hc; prev-id=h1")],
                body: "open\n"
            )
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            _ = try await client.readHead()
            _ = try await client.readChunks(until: "open\n")
            try await waitForSubscribers(p8, channel: "hc")
            _ = try await publish(p8, Self.chained("hc", 2...8))
            _ = try await client.readChunks(until: "h8\n")
            let store = try await ChannelStore.openReadOnly(path: p8.databasePath, logger: Self.quiet)
            let newest = try #require(try await store.newest(channel: "hc"))
            let channel = try await Self.recordedChannel(store, "hc") { $0.lastId == "h8" }
            #expect(channel.lastSequence == newest.sequence)
            #expect(try await store.holdsFurthestBehind(instance: Self.instance(store), limit: 10).map(\.behind) == [0])
        }
    }

    @Test func aHoldWithoutPrevIDIsRecordedAtTheSequenceItJoinedAt() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            _ = try await publish(p8, Self.chained("hj", 1...3))
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath([("Grip-Hold", "response"), ("Grip-Channel", "hj")], body: "")
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            try await waitForSubscribers(p8, channel: "hj")
            let store = try await ChannelStore.openReadOnly(path: p8.databasePath, logger: Self.quiet)
            let newest = try #require(try await store.newest(channel: "hj"))
            let channel = try await Self.recordedChannel(store, "hj") { $0.lastSequence != nil }
            #expect(channel.lastSequence == newest.sequence)
            #expect(channel.lastId == nil)
        }
    }

    @Test func aWebSocketsRecordMovesToTheLastMessageSent() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port),over_http"]) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=wc")
                try await waitForSubscribers(p8, channel: "wc")
                let items = (1...3).map { index in
                    #"{"channel": "wc", "id": "w\#(index)", "formats": {"ws-message": {"content": "m\#(index)"}}}"#
                }
                _ = try await publish(p8, #"{"items": [\#(items.joined(separator: ", "))]}"#)
                for index in 1...3 {
                    #expect(try await socket.readMessage().text == "m\(index)")
                }
                let store = try await ChannelStore.openReadOnly(path: p8.databasePath, logger: Self.quiet)
                let newest = try #require(try await store.newest(channel: "wc"))
                let channel = try await Self.recordedChannel(store, "wc") { $0.lastId == "w3" }
                #expect(channel.lastSequence == newest.sequence)
            }
        }
    }

    private static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// `count` stream items on `channel`, each an id line, chained by prev-id.
    private static func chained(_ channel: String, _ range: ClosedRange<Int>) -> String {
        let items = range.map { index in
            let prev = index > 1 ? #", "prev-id": "h\#(index - 1)""# : ""
            return #"{"channel": "\#(channel)", "id": "h\#(index)"\#(prev), "formats": {"http-stream": "#
                + #"{"content": "h\#(index)\n"}}}"#
        }
        return #"{"items": [\#(items.joined(separator: ", "))]}"#
    }

    /// The instance of the (only) live hold records.
    private static func instance(_ store: ChannelStore) async throws -> String {
        try #require(try await store.holds().first?.instance)
    }

    /// The recorded position on `channel` once it satisfies `condition`.
    private static func recordedChannel(
        _ store: ChannelStore,
        _ channel: String,
        until condition: (HoldRecord.Channel) -> Bool
    ) async throws -> HoldRecord.Channel {
        var found: HoldRecord.Channel?
        _ = try await eventually {
            found = try await store.holds(channel: channel).first?.channels.first { $0.name == channel }
            return found.map(condition) ?? false
        }
        let position = try #require(found)
        #expect(condition(position), "the record stayed at \(position)")
        return position
    }
}
