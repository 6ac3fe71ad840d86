import Foundation
import GRIP
import Logging
import Store
import Testing

/// Holds end to end: a real P-8 (proxy, publish API, store), a real backend answering with GRIP instructions,
/// clients on raw sockets, publishes through the HTTP API.
@Suite struct HoldTests {
    @Test func aLongPollIsHeldUntilAPublishAndGetsTheMergedResponse() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath(
                [("Grip-Hold", "response"), ("Grip-Channel", "lp"), ("X-Original", "kept"), ("X-Replaced", "old")],
                body: "timeout\n"
            )
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            try await waitForSubscribers(p8, channel: "lp")
            let published = try await publish(
                p8,
                #"{"items": [{"channel": "lp", "formats": {"http-response": {"code": 201, "reason": "Made", "#
                    + #""headers": {"X-Replaced": "new", "X-Pub": "1"}, "body": "released\n"}}}]}"#
            )
            #expect(published.status == 200)
            let response = try await client.readResponse()
            #expect(response.status == 201)
            #expect(response.reason == "Made")
            #expect(response.header("X-Original") == "kept")
            #expect(response.header("X-Replaced") == "new")
            #expect(response.header("X-Pub") == "1")
            #expect(response.header("Grip-Hold") == nil)
            #expect(String(decoding: response.body, as: UTF8.self) == "released\n")
            // The connection stays usable for the next request.
            try await client.send("GET /plain?body=again HTTP/1.1\r\nHost: example.com\r\n\r\n")
            #expect(String(decoding: try await client.readResponse().body, as: UTF8.self) == "again")
        }
    }

    /// Timeouts are the backend's input: one far past what a timer counts (NIO's `TimeAmount` is in nanoseconds)
    /// still holds, and a publish still releases it.
    @Test func aHugeTimeoutFromTheBackendIsHeldNotACrash() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let huge = "99999999999999"
            let paths = [
                gripPath(
                    [
                        ("Grip-Hold", "response"), ("Grip-Channel", "huge-lp"), ("Grip-Timeout", huge),
                        ("Grip-Link", "</link>; rel=next; timeout=\(huge)"),
                    ],
                    body: "timeout\n"
                ),
                gripPath(
                    [
                        ("Grip-Hold", "stream"), ("Grip-Channel", "huge-stream"),
                        ("Grip-Keep-Alive", "ka; format=cstring; timeout=\(huge)"),
                    ],
                    body: "open\n"
                ),
            ]
            var clients: [RawHTTPConnection] = []
            for path in paths {
                let client = try await RawHTTPConnection.connect(port: p8.httpPort)
                try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
                clients.append(client)
            }
            try await waitForSubscribers(p8, channel: "huge-lp")
            try await waitForSubscribers(p8, channel: "huge-stream")
            let published = try await publish(
                p8,
                #"{"items": [{"channel": "huge-lp", "formats": {"http-response": {"body": "released\n"}}}]}"#
            )
            #expect(published.status == 200)
            let response = try await clients[0].readResponse()
            #expect(String(decoding: response.body, as: UTF8.self) == "released\n")
            for client in clients {
                await client.close()
            }
        }
    }

    @Test func aLongPollTimesOutWithTheBackendsResponse() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath(
                [("Grip-Hold", "response"), ("Grip-Channel", "quiet"), ("Grip-Timeout", "5"), ("Grip-Status", "202")],
                body: "nothing yet\n"
            )
            let start = ContinuousClock.now
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let response = try await client.readResponse(timeout: .seconds(15))
            #expect(ContinuousClock.now - start >= .seconds(4.5))
            #expect(response.status == 202)
            #expect(String(decoding: response.body, as: UTF8.self) == "nothing yet\n")
            #expect(try await subscribers(p8)["quiet"] == nil)
        }
    }

    @Test func aStreamSendsItsBodyThenPublishedContentKeepAlivesAndEndsOnClose() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath(
                [
                    ("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", "st"),
                    ("Grip-Keep-Alive", "ka\\n; format=cstring; timeout=1"),
                ],
                body: "open\n"
            )
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let head = try await client.readHead()
            #expect(head.status == 200)
            #expect(head.header("Transfer-Encoding") == "chunked")
            #expect(head.header("Content-Length") == nil)
            let opened = try await client.readChunks(until: "ka\nka\n")
            #expect(String(decoding: opened.body, as: UTF8.self) == "open\nka\nka\n")
            try await waitForSubscribers(p8, channel: "st")
            _ = try await publish(p8, streamItems("st", ["one\n", "two\n"]))
            _ = try await publish(
                p8,
                #"{"items": [{"channel": "st", "formats": {"http-stream": {"action": "close"}}}]}"#
            )
            let rest = try await client.readChunks()
            #expect(rest.ended)
            let text = String(decoding: rest.body, as: UTF8.self).replacingOccurrences(of: "ka\n", with: "")
            #expect(text == "one\ntwo\n")
        }
    }

    @Test func anSSEClientResumesFromLastEventIDThenGetsLiveEvents() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["*,resume_last_event_id 127.0.0.1:\(backend.port)"]) { p8 in
            _ = try await publish(p8, sseItems("sse", 1...3))
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath(
                [("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", "sse")],
                body: ":open\n\n"
            )
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\nLast-Event-ID: e1\r\n\r\n")
            let head = try await client.readHead()
            #expect(head.header("P8-Reset") == nil)
            let replayed = try await client.readChunks(until: "data: 3\n\n")
            #expect(String(decoding: replayed.body, as: UTF8.self) == ":open\n\n" + sseEvents(2...3))
            _ = try await publish(p8, sseItems("sse", 4...4))
            let live = try await client.readChunks(until: "data: 4\n\n")
            #expect(String(decoding: live.body, as: UTF8.self) == sseEvents(4...4))
        }
    }

    @Test func anSSEClientTooFarBehindGetsTheResetSignal() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["*,resume_last_event_id 127.0.0.1:\(backend.port)"]) { p8 in
            _ = try await publish(p8, sseItems("gone", 1...2))
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath(
                [("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", "gone")],
                body: ":open\n\n"
            )
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\nLast-Event-ID: e0-unknown\r\n\r\n")
            let head = try await client.readHead()
            #expect(head.header("P8-Reset") == "gone")
            let body = try await client.readChunks(until: "event: reset\ndata: gone\n\n")
            #expect(String(decoding: body.body, as: UTF8.self) == ":open\n\nevent: reset\ndata: gone\n\n")
            _ = try await publish(p8, sseItems("gone", 3...3))
            let live = try await client.readChunks(until: "data: 3\n\n")
            #expect(String(decoding: live.body, as: UTF8.self) == sseEvents(3...3))
        }
    }

    @Test func aLongPollBehindItsChannelIsAnsweredFromTheLogAtOnce() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            _ = try await publish(p8, responseItems("hist", 1...3))
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath([("Grip-Hold", "response"), ("Grip-Channel", "hist; prev-id=m1")], body: "[]")
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let response = try await client.readResponse(timeout: .seconds(15))
            #expect(String(decoding: response.body, as: UTF8.self) == "m2\n")
        }
    }

    @Test func aLongPollWithALostPositionAsksTheBackendOnceThenGetsTheResetHeader() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            _ = try await publish(p8, responseItems("lost", 1...2))
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath([("Grip-Hold", "response"), ("Grip-Channel", "lost; prev-id=x9")], body: "[]")
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let response = try await client.readResponse(timeout: .seconds(15))
            #expect(response.header("P8-Reset") == "lost")
            #expect(String(decoding: response.body, as: UTF8.self) == "[]")
            let gripLast = backend.requests.filter { $0.uri.hasPrefix("/plain") }.map { $0.values("grip-last") }
            #expect(gripLast == [[], ["lost; last-id=x9"]])
        }
    }

    @Test func aSlowStreamClientDoesNotHoldBackAFastOne() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let path = gripPath([("Grip-Hold", "stream"), ("Grip-Channel", "fan")], body: "")
            let slow = try await RawHTTPConnection.connect(port: p8.httpPort, reading: false)
            try await slow.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let fast = try await RawHTTPConnection.connect(port: p8.httpPort)
            try await fast.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            _ = try await fast.readHead()
            try await waitForSubscribers(p8, channel: "fan", count: 2)
            let chunk = String(repeating: "x", count: 16_000) + "\n"
            var received = 0
            for batch in 0..<50 {
                _ = try await publish(p8, streamItems("fan", Array(repeating: chunk, count: 10)))
                received += try await fast.readChunks(until: nil, bytes: 10 * chunk.utf8.count).body.count
                #expect(received == (batch + 1) * 10 * chunk.utf8.count)
            }
            // 8 MB the slow client never read (more than the kernel's buffers and P-8's limit): it is disconnected
            // rather than buffered without bound.
            try await slow.resumeReading()
            try await slow.waitForClose()
        }
    }

    @Test func heldRequestsAreRecordedWhileHeld() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath([("Grip-Hold", "stream"), ("Grip-Channel", "rec")], body: "")
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            _ = try await client.readHead()
            let store = try await ChannelStore.openReadOnly(
                path: p8.databasePath,
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            var holds: [HoldRecord] = []
            for _ in 0..<100 where holds.isEmpty {
                holds = try await store.holds(channel: "rec")
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(holds.map(\.mode) == [.stream])
            await client.close()
            for _ in 0..<100 where !holds.isEmpty {
                try await Task.sleep(for: .milliseconds(20))
                holds = try await store.holds(channel: "rec")
            }
            #expect(holds.isEmpty)
        }
    }

    @Test func concurrentPublishesReachSubscribersInLogOrder() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            try await client.send(
                "GET \(gripPath([("Grip-Hold", "stream"), ("Grip-Channel", "par")], body: "")) HTTP/1.1\r\n"
                    + "Host: example.com\r\n\r\n"
            )
            _ = try await client.readHead()
            try await waitForSubscribers(p8, channel: "par")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for publisher in 0..<4 {
                    group.addTask {
                        for index in 0..<25 {
                            _ = try await publish(p8, streamItems("par", ["\(publisher)-\(index);"]))
                        }
                    }
                }
                try await group.waitForAll()
            }
            var body: [UInt8] = []
            while body.split(separator: UInt8(ascii: ";")).count < 100 {
                body += try await client.readChunks(until: nil, bytes: 1).body
            }
            let store = try await ChannelStore.openReadOnly(
                path: p8.databasePath,
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            let logged = try #require(try await store.read(channel: "par", after: .sequence(0)).items)
            let logOrder = try logged.map { item -> String in
                let formats = try PublishFormats(storedJSON: Array(item.formats))
                return String(decoding: formats.httpStream?.content ?? [], as: UTF8.self)
            }
            #expect(String(decoding: body, as: UTF8.self) == logOrder.joined())
        }
    }
}

// MARK: - Helpers

/// A `/plain` path of the test backend answering with these headers and body.
func gripPath(_ headers: [(String, String)], body: String) -> String {
    var components = URLComponents()
    components.path = "/plain"
    components.queryItems =
        headers.map { URLQueryItem(name: "header", value: "\($0.0): \($0.1)") }
        + [URLQueryItem(name: "body", value: body)]
    let query = components.percentEncodedQuery ?? ""
    return "/plain?" + query.replacingOccurrences(of: "+", with: "%2B").replacingOccurrences(of: ";", with: "%3B")
}

func publish(_ p8: RunningP8, _ json: String) async throws -> RawResponse {
    let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
    let length = json.utf8.count
    try await connection.send(
        "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(length)\r\n\r\n\(json)"
    )
    let response = try await connection.readResponse()
    await connection.close()
    if response.status != 200 {
        throw HoldTestError("publish refused: \(response.status) \(String(decoding: response.body, as: UTF8.self))")
    }
    return response
}

func subscribers(_ p8: RunningP8) async throws -> [String: Int] {
    let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
    try await connection.send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
    let response = try await connection.readResponse()
    await connection.close()
    guard case .object(let root)? = JSONValue.parse(response.body), case .object(let channels)? = root["channels"]
    else {
        throw HoldTestError("unexpected /stats body")
    }
    return channels.compactMapValues { value -> Int? in
        guard case .object(let members) = value, case .int(let count)? = members["subscribers"] else { return nil }
        return count
    }
}

/// Waits until `channel` has `count` live subscribers (a publish before that would reach nobody).
func waitForSubscribers(_ p8: RunningP8, channel: String, count: Int = 1) async throws {
    for _ in 0..<200 {
        if try await subscribers(p8)[channel] ?? 0 >= count { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw HoldTestError("no subscriber on \(channel)")
}

func streamItems(_ channel: String, _ contents: [String]) -> String {
    let items = contents.map { content in
        #"{"channel": "\#(channel)", "formats": {"http-stream": {"content": \#(jsonString(content))}}}"#
    }
    return #"{"items": [\#(items.joined(separator: ", "))]}"#
}

private func sseEvents(_ range: ClosedRange<Int>) -> String {
    range.map { "id: e\($0)\ndata: \($0)\n\n" }.joined()
}

private func sseItems(_ channel: String, _ range: ClosedRange<Int>) -> String {
    let items = range.map { index in
        let prev = index > 1 ? #", "prev-id": "e\#(index - 1)""# : ""
        return #"{"channel": "\#(channel)", "id": "e\#(index)"\#(prev), "formats": {"http-stream": "#
            + #"{"content": \#(jsonString("id: e\(index)\ndata: \(index)\n\n"))}}}"#
    }
    return #"{"items": [\#(items.joined(separator: ", "))]}"#
}

private func responseItems(_ channel: String, _ range: ClosedRange<Int>) -> String {
    let items = range.map { index in
        #"{"channel": "\#(channel)", "id": "m\#(index)", "formats": {"http-response": {"body": "m\#(index)\n"}}}"#
    }
    return #"{"items": [\#(items.joined(separator: ", "))]}"#
}

func jsonString(_ text: String) -> String {
    String(decoding: JSONValue.string(text).encoded(), as: UTF8.self)
}

struct HoldTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
