import Foundation
import GRIP
import P8TestSupport
import Publish
import Store
import Synchronization
import Testing

/// WebSocket sessions on a real hub and store, observed through the ``WebSocketConnection`` seam.
@Suite struct WebSocketSessionTests {
    @Test func subscribedSocketsGetTheirChannelsWSMessagesInOrder() async throws {
        try await withHub { hub in
            let socket = RecordingWebSocket()
            let session = hub.openWebSocket(connection: socket, routeID: nil, clientAddress: "127.0.0.1")
            session.subscribe(channel: "room", backendName: "room", filters: [], lastID: nil)
            #expect(hub.subscriberCounts()["room"] == 1)
            try await hub.publish([
                wsItem("room", WSMessageFormat(content: Array("one".utf8))),
                wsItem("other", WSMessageFormat(content: Array("not mine".utf8))),
                textItem("room", "no ws-message format\n"),
                wsItem("room", WSMessageFormat(type: .binary, content: [0, 1])),
            ])
            _ = try await socket.waitFor { $0.count == 2 }
            session.unsubscribe(channel: "room")
            #expect(hub.subscriberCounts()["room"] == nil)
            try await hub.publish([wsItem("room", WSMessageFormat(content: Array("after".utf8)))])
            try await allDelivered(hub)
            #expect(socket.recorded == [.message(.text, "one"), .message(.binary, "\u{0}\u{1}")])
            session.end()
        }
    }

    @Test func webSocketsAreKnownToConncheckRefreshAndTheStatsCounts() async throws {
        try await withHub { hub in
            let socket = RecordingWebSocket()
            let session = hub.openWebSocket(id: "cid-1", connection: socket, routeID: nil, clientAddress: nil)
            session.subscribe(channel: "room", backendName: "room", filters: [], lastID: nil)
            #expect(hub.connectedSessions(among: ["cid-1", "gone"]) == ["cid-1"])
            #expect(hub.subscribers(of: "room") == ["ws": 1])
            #expect(hub.refreshWebSocket(id: "cid-1"))
            #expect(!hub.refreshWebSocket(id: "gone"))
            hub.refreshWebSockets(channel: "room")
            hub.refreshWebSockets(channel: "elsewhere")
            try await hub.publish([wsItem("room", WSMessageFormat(action: .refresh))])
            _ = try await socket.waitFor { $0.count == 3 }
            #expect(socket.recorded == [.refresh, .refresh, .refresh])
            session.end()
            #expect(hub.connectedSessions(among: ["cid-1"]).isEmpty)
            #expect(!hub.refreshWebSocket(id: "cid-1"))
            #expect(hub.subscribers(of: "room").isEmpty)
        }
    }

    @Test func aCloseActionClosesTheSocketAndEndsTheSession() async throws {
        try await withHub { hub in
            let socket = RecordingWebSocket()
            let session = hub.openWebSocket(connection: socket, routeID: nil, clientAddress: nil)
            session.subscribe(channel: "c", backendName: "c", filters: [], lastID: nil)
            try await hub.publish([
                wsItem("c", WSMessageFormat(action: .close, closeCode: 4001, closeReason: "bye")),
                wsItem("c", WSMessageFormat(content: Array("too late".utf8))),
            ])
            _ = try await socket.waitFor { !$0.isEmpty }
            try await allDelivered(hub)
            #expect(socket.recorded == [.close(4001, "bye")])
            #expect(hub.subscriberCounts()["c"] == nil)
        }
    }

    @Test func aSubscribeWithALastIDReplaysTheLogThenLiveItemsWithoutGapsOrRepeats() async throws {
        try await withHub { hub in
            try await hub.publish(
                (1...50).map { wsItem("log", WSMessageFormat(content: Array("\($0)".utf8)), id: "i\($0)") }
            )
            let socket = RecordingWebSocket()
            let session = hub.openWebSocket(connection: socket, routeID: nil, clientAddress: nil)
            session.subscribe(channel: "log", backendName: "log", filters: [], lastID: "i10")
            // Live items race the log read.
            for index in 51...80 {
                try await hub.publish([wsItem("log", WSMessageFormat(content: Array("\(index)".utf8)), id: "i\(index)")]
                )
            }
            _ = try await socket.waitFor { $0.count >= 70 }
            try await allDelivered(hub)
            #expect(socket.recorded == (11...80).map { .message(.text, "\($0)") })
            session.end()
        }
    }

    @Test func aSubscribeFromAnUnknownPositionGetsAResetThenLiveItems() async throws {
        try await withHub { hub in
            try await hub.publish([wsItem("p-r", WSMessageFormat(content: Array("old".utf8)), id: "a1")])
            let socket = RecordingWebSocket()
            let session = hub.openWebSocket(connection: socket, routeID: nil, clientAddress: nil)
            session.subscribe(channel: "p-r", backendName: "r", filters: [], lastID: "zz")
            _ = try await socket.waitFor { !$0.isEmpty }
            try await hub.publish([wsItem("p-r", WSMessageFormat(content: Array("live".utf8)), id: "a2")])
            _ = try await socket.waitFor { $0.count == 2 }
            #expect(socket.recorded == [.reset("r"), .message(.text, "live")])
            session.end()
        }
    }

    @Test func skipSelfUsesTheSocketsUserMeta() async throws {
        try await withHub { hub in
            let socket = RecordingWebSocket()
            let session = hub.openWebSocket(connection: socket, routeID: nil, clientAddress: nil)
            session.setMeta(name: "user", value: "alice")
            session.subscribe(channel: "chat", backendName: "chat", filters: ["skip-self"], lastID: nil)
            var own = wsItem("chat", WSMessageFormat(content: Array("mine".utf8)))
            own.meta = ["sender": "alice"]
            var other = wsItem("chat", WSMessageFormat(content: Array("theirs".utf8)))
            other.meta = ["sender": "bob"]
            try await hub.publish([own, other])
            _ = try await socket.waitFor { !$0.isEmpty }
            try await allDelivered(hub)
            #expect(socket.recorded == [.message(.text, "theirs")])
            session.end()
        }
    }

    @Test func aSocketIsRecordedAsAWebSocketHoldWhileItLasts() async throws {
        try await withHub { hub in
            let socket = RecordingWebSocket()
            let session = hub.openWebSocket(connection: socket, routeID: nil, clientAddress: "10.0.0.1")
            session.subscribe(channel: "held", backendName: "held", filters: [], lastID: nil)
            _ = try await eventually { try await !hub.store.holds(channel: "held").isEmpty }
            let records = try await hub.store.holds(channel: "held")
            #expect(records.map(\.mode) == [.webSocket])
            #expect(records.first?.clientAddress == "10.0.0.1")
            session.end()
            #expect(try await eventually { try await hub.store.holds(channel: "held").isEmpty })
        }
    }
}

/// What a WebSocket was asked to do, in order.
enum SocketEvent: Equatable, Sendable {
    case message(WSMessageFormat.MessageType, String)
    case close(UInt16?, String)
    case reset(String)
    case refresh
}

/// The WebSocket side of the seam as a recorder.
final class RecordingWebSocket: WebSocketConnection {
    private let events = Mutex<[SocketEvent]>([])

    var recorded: [SocketEvent] { self.events.withLock { $0 } }

    func sendMessage(type: WSMessageFormat.MessageType, content: [UInt8]) {
        self.events.withLock { $0.append(.message(type, String(decoding: content, as: UTF8.self))) }
    }

    func close(code: UInt16?, reason: String) {
        self.events.withLock { $0.append(.close(code, reason)) }
    }

    func sendReset(channel: String) {
        self.events.withLock { $0.append(.reset(channel)) }
    }

    func refresh() {
        self.events.withLock { $0.append(.refresh) }
    }

    /// Waits (bounded) until `predicate` holds for the recorded events.
    func waitFor(_ predicate: ([SocketEvent]) -> Bool) async throws -> [SocketEvent] {
        _ = try await eventually { predicate(self.recorded) }
        return self.recorded
    }
}

private func wsItem(_ channel: String, _ format: WSMessageFormat, id: String? = nil) -> PublishItem {
    PublishItem(channel: channel, id: id, formats: PublishFormats(wsMessage: format))
}
