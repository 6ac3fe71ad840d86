import Foundation
import GRIP
import Logging
import P8TestSupport
import Store
import Testing

/// WebSocket-over-HTTP end to end: a real P-8 (proxy, publish API, store), the test backend's `/ws` endpoint, a
/// real WebSocket client on a raw socket, publishes through the HTTP API.
@Suite struct WebSocketTests {
    private static func routes(_ backend: TestBackend) -> [String] {
        ["* 127.0.0.1:\(backend.port),over_http"]
    }

    /// The events the backend received on `/ws`, request by request.
    private static func events(_ backend: TestBackend) -> [[WebSocketEvent]] {
        backend.requests.filter { $0.uri.hasPrefix("/ws") }.map { (try? WebSocketEvent.decode($0.body)) ?? [] }
    }

    private static func waitForEvent(_ backend: TestBackend, _ matches: (WebSocketEvent) -> Bool) async throws {
        let seen = try await eventually { Self.events(backend).joined().contains(where: matches) }
        #expect(seen)
    }

    @Test func theHandshakeWaitsForTheBackendsOpenAndSignsEveryRequest() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?x=1")
                #expect(socket.response.status == 101)
                #expect(socket.response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                #expect(socket.response.header("Sec-WebSocket-Extensions") == nil)
                #expect(socket.response.header("Set-Meta-User") == nil)
                try await socket.send(text: "hi")
                try await Self.waitForEvent(backend) { $0 == .text(Array("hi".utf8)) }
                let requests = backend.requests.filter { $0.uri.hasPrefix("/ws") }
                #expect(requests.count == 2)
                #expect(requests[0].method == "POST")
                #expect(requests[0].uri == "/ws?x=1")
                #expect(requests[0].body == Array("OPEN\r\n".utf8))
                #expect(requests[0].values("Content-Type") == ["application/websocket-events"])
                #expect(requests[0].values("Sec-WebSocket-Extensions") == ["grip"])
                #expect(requests[0].values("Upgrade").isEmpty)
                #expect(requests[0].values("Grip-Sig").count == 1)
                #expect(requests[0].values("Meta-User").isEmpty)
                let connectionID = try #require(requests[0].values("Connection-Id").first)
                #expect(requests[1].values("Connection-Id") == [connectionID])
                #expect(requests[1].values("Meta-User") == ["alice"])
                await socket.close()
            }
        }
    }

    @Test func everyClientEventReachesTheBackend() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                try await socket.send(text: "hello")
                try await socket.send(opcode: RawWebSocket.binary, [0, 1, 2])
                try await socket.send(opcode: RawWebSocket.text, Array("frag".utf8), fin: false)
                try await socket.send(opcode: 0, Array("mented".utf8))
                try await socket.send(opcode: RawWebSocket.ping, Array("p".utf8))
                let pong = try await socket.read()
                #expect(pong == RawWebSocket.Frame(fin: true, opcode: RawWebSocket.pong, payload: Array("p".utf8)))
                try await socket.send(opcode: RawWebSocket.pong, Array("q".utf8))
                try await socket.sendClose(code: 4002, reason: "cya")
                let close = try await socket.read()
                #expect(close.opcode == RawWebSocket.close)
                #expect(close.closeCode == 4002)
                #expect(close.closeReason == "cya")
                try await socket.connection.waitForClose()
                let all = Array(Self.events(backend).joined())
                #expect(
                    all == [
                        .open, .text(Array("hello".utf8)), .binary([0, 1, 2]), .text(Array("fragmented".utf8)),
                        .ping(Array("p".utf8)), .pong(Array("q".utf8)), .close(code: 4002, reason: Array("cya".utf8)),
                    ]
                )
            }
        }
    }

    @Test func aCloseArrivingWhileARequestIsInFlightIsSentNext() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                try await socket.send(text: "first")
                try await socket.sendClose(code: 4003, reason: "")
                #expect(try await socket.read().closeCode == 4003)
                try await socket.connection.waitForClose()
                #expect(Self.events(backend).joined().last == .close(code: 4003, reason: []))
            }
        }
    }

    @Test func aClientThatVanishesIsReportedWithDisconnect() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                #expect(socket.response.status == 101)
                await socket.close()
                try await Self.waitForEvent(backend) { $0 == .disconnect }
            }
        }
    }

    @Test func backendRepliesReachTheClientWithoutTheirPrefix() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?echo=1")
                try await socket.send(text: "raw:no prefix, dropped")
                try await socket.send(text: "one")
                #expect(try await socket.readMessage().text == "echo:one")
                try await socket.send(opcode: RawWebSocket.binary, [9, 8])
                #expect(
                    try await socket.readMessage() == .init(fin: true, opcode: RawWebSocket.binary, payload: [9, 8])
                )
                try await socket.send(text: "close:4005")
                let close = try await socket.readMessage()
                #expect(close.opcode == RawWebSocket.close)
                #expect(close.closeCode == 4005)
                #expect(close.closeReason == "backend closed")
            }
        }
    }

    @Test func withoutTheGripExtensionMessagesAreRelayedAsTheyAre() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?nogrip=1")
                try await socket.send(text: "raw:c:{\"type\":\"detach\"}")
                #expect(try await socket.readMessage().text == "c:{\"type\":\"detach\"}")
            }
        }
    }

    @Test func publishedMessagesReachSubscribedSockets() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=room")
                let other = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=elsewhere")
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "room")
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "elsewhere")
                try await WebSocketPublisher.publish(p8, channel: "room", #"{"content": "hello websocket"}"#)
                try await WebSocketPublisher.publish(p8, channel: "room", #"{"content-bin": "AAEC/w=="}"#)
                try await WebSocketPublisher.publish(p8, channel: "elsewhere", #"{"content": "other"}"#)
                #expect(try await socket.readMessage().text == "hello websocket")
                #expect(
                    try await socket.readMessage()
                        == .init(fin: true, opcode: RawWebSocket.binary, payload: [0, 1, 2, 255])
                )
                #expect(try await other.readMessage().text == "other")
                let held = try await WebSocketPublisher.heldWebSockets(p8)
                #expect(held.sorted() == ["elsewhere", "room"])
                try await WebSocketPublisher.publish(
                    p8,
                    channel: "room",
                    #"{"action": "close", "code": 4001, "reason": "bye"}"#
                )
                let close = try await socket.readMessage()
                #expect(close.opcode == RawWebSocket.close)
                #expect(close.closeCode == 4001)
                #expect(close.closeReason == "bye")
                try await Self.waitForEvent(backend) { $0 == .close(code: nil, reason: []) }
                try await socket.sendClose(code: 4001, reason: "")
                try await socket.connection.waitForClose()
                await other.close()
            }
        }
    }

    @Test func aPublishedRefreshMakesABackendRequestNow() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=fresh")
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "fresh")
                let before = backend.requests.filter { $0.uri.hasPrefix("/ws") }.count
                try await WebSocketPublisher.publish(p8, channel: "fresh", #"{"action": "refresh"}"#)
                // No keep-alive interval was set: only the refresh makes this request, with an empty body.
                let requested = try await eventually(timeout: .seconds(15)) {
                    backend.requests.filter { $0.uri.hasPrefix("/ws") }.count > before
                }
                #expect(requested)
                let refresh = try #require(backend.requests.filter { $0.uri.hasPrefix("/ws") }.last)
                #expect(refresh.body.isEmpty)
                #expect(refresh.values("Connection-Id").count == 1)
                await socket.close()
            }
        }
    }

    @Test func whatTheBackendDoesNotAcceptWithContentBytesAcceptedIsSentAgain() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?chunk=3")
                try await socket.send(text: "abcdefg")
                try await Self.waitForEvent(backend) { $0 == .text(Array("g".utf8)) }
                let texts = Self.events(backend).joined().compactMap { event -> String? in
                    if case .text(let content) = event { return String(decoding: content, as: UTF8.self) }
                    return nil
                }
                #expect(texts == ["abcdefg", "defg", "g"])
                await socket.close()
            }
        }
    }

    @Test func aSlowSocketIsDroppedWithoutHoldingBackAFastOne() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let slow = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=fan", reading: false)
                let fast = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=fan")
                for _ in 0..<300 where try await WebSocketPublisher.subscribers(p8)["fan"] ?? 0 < 2 {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let content = String(repeating: "x", count: 60_000)
                for index in 0..<150 {
                    try await WebSocketPublisher.publish(p8, channel: "fan", #"{"content": "\#(index)\#(content)"}"#)
                    var message: [UInt8] = []
                    var frame = try await fast.read()
                    message += frame.payload
                    while !frame.fin {
                        frame = try await fast.read()
                        message += frame.payload
                    }
                    #expect(message.count == "\(index)".utf8.count + content.utf8.count)
                }
                // 9 MB the slow client never read (more than the socket buffers and P-8's limit): it is
                // disconnected rather than buffered without bound.
                try await slow.connection.resumeReading()
                try await slow.connection.waitForClose()
            }
        }
    }

    @Test func controlMessagesSubscribeUnsubscribeAndDetach() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                try await socket.send(text: #"ctl:{"type":"subscribe","channel":"a"}"#)
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "a")
                try await WebSocketPublisher.publish(p8, channel: "a", #"{"content": "on a"}"#)
                #expect(try await socket.readMessage().text == "on a")
                try await socket.send(text: #"ctl:{"type":"unsubscribe","channel":"a"}"#)
                try await socket.send(text: #"ctl:{"type":"subscribe","channel":"b"}"#)
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "b")
                #expect(try await WebSocketPublisher.subscribers(p8)["a"] == nil)
                try await socket.send(text: #"ctl:{"type":"keep-alive","content":"KA","timeout":1}"#)
                #expect(try await socket.readMessage().text == "KA")
                try await socket.send(text: #"ctl:{"type":"keep-alive"}"#)
                try await socket.send(text: #"ctl:{"type":"detach"}"#)
                try await Self.waitForEvent(backend) { $0 == .text(Array(#"ctl:{"type":"detach"}"#.utf8)) }
                let before = Self.events(backend).count
                try await socket.send(text: "after detach")
                try await WebSocketPublisher.publish(p8, channel: "b", #"{"content": "still delivered"}"#)
                #expect(try await socket.readMessage().text == "still delivered")
                #expect(Self.events(backend).count == before)
            }
        }
    }

    @Test func aSubscribeWithALastIDResumesFromTheLog() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                for index in 1...3 {
                    try await WebSocketPublisher.publish(
                        p8,
                        channel: "log",
                        #"{"content": "m\#(index)"}"#,
                        id: "m\(index)"
                    )
                }
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=log&last-id=m1")
                #expect(try await socket.readMessage().text == "m2")
                #expect(try await socket.readMessage().text == "m3")
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "log")
                try await WebSocketPublisher.publish(p8, channel: "log", #"{"content": "m4"}"#, id: "m4")
                #expect(try await socket.readMessage().text == "m4")
            }
        }
    }

    @Test func aSubscribeFromALostPositionGetsAReset() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                try await WebSocketPublisher.publish(p8, channel: "gone", #"{"content": "m1"}"#, id: "m1")
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?channel=gone&last-id=unknown")
                #expect(try await socket.readMessage().text == #"c:{"channel":"gone","type":"reset"}"#)
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "gone")
                try await WebSocketPublisher.publish(p8, channel: "gone", #"{"content": "live"}"#, id: "m2")
                #expect(try await socket.readMessage().text == "live")
            }
        }
    }

    @Test func aRefusedHandshakeIsRelayedAndADownBackendIs502() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let refused = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?refuse=1")
                #expect(refused.response.status == 403)
                #expect(refused.response.header("X-Refused") == "yes")
                #expect(refused.response.text == "go away\n")
            }
        }
        try await withRunningP8Server(routes: ["* 127.0.0.1:1,over_http"]) { p8 in
            let down = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
            #expect(down.response.status == 502)
            #expect(down.response.text == "Error while proxying to origin.\n")
        }
    }

    @Test func aRequestThatCannotConnectIsRetried() async throws {
        // A port outside the ephemeral range, so that no other test's backend gets it while it is free.
        var started: TestBackend?
        for _ in 0..<20 where started == nil {
            started = try? await TestBackend.start(port: Int.random(in: 10_000..<20_000))
        }
        let first = try #require(started)
        let port = first.port
        let log = CapturedLog()
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(port),over_http"], log: log) { p8 in
            let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?echo=1&oneshot=1")
            #expect(socket.response.status == 101)
            await first.stop()
            // No connection is left to the stopped backend: the next request cannot connect until it is back.
            // The backend comes back only once a connect has failed (not after a fixed time, which a loaded
            // machine can outrun: the request would then go through at the first try, retrying nothing).
            let failedBefore = log.count(of: "backend connect failed")
            try await socket.send(text: "while down")
            #expect(try await eventually { log.count(of: "backend connect failed") > failedBefore })
            let second = try await TestBackend.start(port: port)
            defer { Task { await second.stop() } }
            // Retries come 1, 2, 4, 8 and 16 s apart (plus up to a second each): the first one after the backend
            // is back, which may be the third on a loaded machine, is waited for.
            #expect(try await socket.readMessage(timeout: .seconds(40)).text == "echo:while down")
        }
    }

    @Test func aBackendAnsweringGarbageClosesTheClientWithAReason() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: Self.routes(backend)) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws?garbage=1")
                #expect(socket.response.status == 101)
                try await socket.send(text: "anything")
                let close = try await socket.readMessage()
                #expect(close.opcode == RawWebSocket.close)
                #expect(close.closeCode == 1011)
                #expect(close.closeReason == "backend error")
            }
        }
    }

    @Test func tooBigAndMalformedFramesCloseWithTheRightCode() async throws {
        try await withTestBackend { backend in
            let limits = "[proxy]\nwebsocket_max_frame_size=4096\nwebsocket_max_message_size=8192"
            try await withRunningP8Server(routes: Self.routes(backend), config: limits) { p8 in
                let bigFrame = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                try await bigFrame.send(opcode: RawWebSocket.binary, [UInt8](repeating: 1, count: 4097))
                #expect(try await bigFrame.readMessage().closeCode == 1009)
                let bigMessage = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                try await bigMessage.send(opcode: RawWebSocket.binary, [UInt8](repeating: 1, count: 4096), fin: false)
                try await bigMessage.send(opcode: 0, [UInt8](repeating: 1, count: 4096), fin: false)
                try await bigMessage.send(opcode: 0, [1])
                #expect(try await bigMessage.readMessage().closeCode == 1009)
                let stray = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                try await stray.send(opcode: 0, Array("continuation".utf8))
                #expect(try await stray.readMessage().closeCode == 1002)
                let invalid = try await RawWebSocket.connect(port: p8.httpPort, path: "/ws")
                try await invalid.send(opcode: RawWebSocket.text, [0xff, 0xfe])
                #expect(try await invalid.readMessage().closeCode == 1007)
            }
        }
    }
}

/// WebSocket passthrough end to end: a route without `over_http` to the test backend's `/wsecho` WebSocket.
@Suite struct WebSocketPassthroughTests {
    @Test func framesSentBeforeThe101AreKept() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
                let socket = try await RawWebSocket.connect(
                    port: p8.httpPort,
                    path: "/wsecho",
                    textBeforeResponse: "early"
                )
                #expect(socket.response.status == 101)
                #expect(try await socket.readMessage().text == "echo:early")
                await socket.close()
            }
            // And over HTTP: the frame goes to the backend after OPEN.
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port),over_http"]) { p8 in
                let socket = try await RawWebSocket.connect(
                    port: p8.httpPort,
                    path: "/ws?echo=1",
                    textBeforeResponse: "early"
                )
                #expect(socket.response.status == 101)
                #expect(try await socket.readMessage().text == "echo:early")
                await socket.close()
            }
        }
    }

    @Test func fragmentedMessagesAreRelayedFrameByFrame() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/wsecho")
                try await socket.send(opcode: RawWebSocket.text, Array("hel".utf8), fin: false)
                // The backend echoes each frame as it gets it: the first arrives before the message is complete.
                let first = try await socket.readMessage()
                #expect(first == .init(fin: false, opcode: RawWebSocket.text, payload: Array("echo:hel".utf8)))
                try await socket.send(opcode: 0, Array("lo".utf8))
                #expect(try await socket.readMessage() == .init(fin: true, opcode: 0, payload: Array("lo".utf8)))
                try await socket.send(text: "whole")
                #expect(try await socket.readMessage().text == "echo:whole")
                await socket.close()
            }
        }
    }

    @Test func framesPingsAndClosesFlowBothWays() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
                let socket = try await RawWebSocket.connect(
                    port: p8.httpPort,
                    path: "/wsecho?a=1",
                    headers: [("Sec-WebSocket-Extensions", "permessage-deflate")]
                )
                #expect(socket.response.status == 101)
                #expect(socket.response.header("X-Backend") == "echo")
                #expect(socket.response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                let handshake = try #require(backend.requests.first { $0.uri == "/wsecho?a=1" })
                #expect(handshake.values("Sec-WebSocket-Extensions") == ["grip"])
                #expect(handshake.values("Grip-Sig").count == 1)
                try await socket.send(text: "hello")
                #expect(
                    try await socket.read()
                        == .init(fin: true, opcode: RawWebSocket.text, payload: Array("echo:hello".utf8))
                )
                // A fragmented message goes through frame by frame (grip-spec §7.6), continuations preserved.
                try await socket.send(opcode: RawWebSocket.binary, [1, 2], fin: false)
                try await socket.send(opcode: 0, [3])
                #expect(try await socket.read() == .init(fin: false, opcode: RawWebSocket.binary, payload: [1, 2]))
                #expect(try await socket.read() == .init(fin: true, opcode: 0, payload: [3]))
                try await socket.send(opcode: RawWebSocket.ping, Array("p".utf8))
                #expect(
                    try await socket.read() == .init(fin: true, opcode: RawWebSocket.pong, payload: Array("p".utf8))
                )
                try await socket.sendClose(code: 4002, reason: "cya")
                let close = try await socket.read()
                #expect(close.opcode == RawWebSocket.close)
                #expect(close.closeCode == 4002)
                #expect(close.closeReason == "cya")
                try await socket.connection.waitForClose()
            }
        }
    }

    @Test func theBackendClosingOrGoingAwayClosesTheClient() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
                let closing = try await RawWebSocket.connect(port: p8.httpPort, path: "/wsecho")
                try await closing.send(text: "close:4004")
                let close = try await closing.read()
                #expect(close.closeCode == 4004)
                #expect(close.closeReason == "backend says bye")
                try await closing.sendClose(code: 4004, reason: "")
                try await closing.connection.waitForClose()
                let dropped = try await RawWebSocket.connect(port: p8.httpPort, path: "/wsecho")
                try await dropped.send(text: "drop")
                let gone = try await dropped.read()
                #expect(gone.closeCode == 1011)
                #expect(gone.closeReason == "backend went away")
                try await dropped.connection.waitForClose()
            }
        }
    }

    @Test func withTheGripExtensionTheBackendSubscribesDetachesAndPublishesReachTheClient() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
                let socket = try await RawWebSocket.connect(port: p8.httpPort, path: "/wsecho?grip=1")
                #expect(socket.response.status == 101)
                #expect(socket.response.header("Sec-WebSocket-Extensions") == nil)
                try await socket.send(text: "raw:no prefix, dropped")
                try await socket.send(text: "hello")
                #expect(try await socket.readMessage().text == "echo:hello")
                try await socket.send(text: #"ctl:{"type":"subscribe","channel":"pt"}"#)
                try await WebSocketPublisher.waitForSubscribers(p8, channel: "pt")
                try await WebSocketPublisher.publish(p8, channel: "pt", #"{"content": "published"}"#)
                #expect(try await socket.readMessage().text == "published")
                try await socket.send(text: #"ctl:{"type":"detach"}"#)
                try await Task.sleep(for: .milliseconds(100))
                // Detached: client messages go nowhere (no echo), publishes still arrive.
                try await socket.send(text: "not relayed")
                try await Task.sleep(for: .milliseconds(100))
                try await WebSocketPublisher.publish(p8, channel: "pt", #"{"content": "after detach"}"#)
                #expect(try await socket.readMessage().text == "after detach")
                try await WebSocketPublisher.publish(p8, channel: "pt", #"{"action": "close", "code": 4001}"#)
                #expect(try await socket.readMessage().closeCode == 4001)
                try await socket.sendClose(code: 4001, reason: "")
                try await socket.connection.waitForClose()
            }
        }
    }

    @Test func aRefusedUpgradeIsRelayed() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
                let refused = try await RawWebSocket.connect(port: p8.httpPort, path: "/nowhere")
                #expect(refused.response.status == 404)
                #expect(refused.response.text == "no such test path\n")
            }
        }
        try await withRunningP8Server(routes: ["* 127.0.0.1:1"]) { p8 in
            let down = try await RawWebSocket.connect(port: p8.httpPort, path: "/wsecho")
            #expect(down.response.status == 502)
        }
    }
}

/// The publish API and stats, for the WebSocket tests.
private enum WebSocketPublisher {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func publish(_ p8: RunningP8, channel: String, _ format: String, id: String? = nil) async throws {
        let idField = id.map { #", "id": "\#($0)""# } ?? ""
        let json = #"{"items": [{"channel": "\#(channel)"\#(idField), "formats": {"ws-message": \#(format)}}]}"#
        let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
        try await connection.send(
            "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
        )
        let response = try await connection.readResponse()
        await connection.close()
        guard response.status == 200 else {
            throw Failure(description: "publish refused: \(response.status) \(response.text)")
        }
    }

    static func subscribers(_ p8: RunningP8) async throws -> [String: Int] {
        let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
        try await connection.send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try await connection.readResponse()
        await connection.close()
        guard case .object(let root)? = JSONValue.parse(response.body), case .object(let channels)? = root["channels"]
        else {
            throw Failure(description: "unexpected /stats body")
        }
        return channels.compactMapValues { value -> Int? in
            guard case .object(let members) = value, case .int(let count)? = members["subscribers"] else { return nil }
            return count
        }
    }

    static func waitForSubscribers(_ p8: RunningP8, channel: String) async throws {
        for _ in 0..<300 {
            if try await Self.subscribers(p8)[channel] ?? 0 >= 1 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw Failure(description: "no subscriber on \(channel)")
    }

    /// The channels of the WebSocket sessions in the held-request records, once they are written.
    static func heldWebSockets(_ p8: RunningP8) async throws -> [String] {
        let store = try await ChannelStore.openReadOnly(
            path: p8.databasePath,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        for _ in 0..<300 {
            let holds = try await store.holds().filter { $0.mode == .webSocket }
            let channels = holds.flatMap { $0.channels.map(\.name) }
            if holds.count == 2 && channels.count == 2 {
                return channels
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure(description: "WebSocket hold records not written")
    }
}
