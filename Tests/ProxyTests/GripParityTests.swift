import Foundation
import GRIP
import P8TestSupport
import Testing

/// GRIP details Pushpin 1.41 has that real libraries rely on (issue 18), end to end: content filters on a
/// stream's initial body and on published items, and next links shared between streams.
@Suite struct GripParityTests {
    @Test func buildIDRendersIdsInTheInitialBodyAndInPublishedContent() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            let path = gripPath(
                [
                    ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"),
                    ("Grip-Channel", "events-a; prev-id=7; filter=build-id"),
                    ("Grip-Link", "</next>; rel=next"), ("Grip-Set-Meta", #"id_format="a:%(events-a)s""#),
                ],
                body: "id: %I\ndata: 100%% sure\n\n"
            )
            try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let head = try await client.readHead()
            #expect(head.status == 200)
            let opened = try await client.readChunks(until: "sure\n\n")
            #expect(String(decoding: opened.body, as: UTF8.self) == "id: a:7\ndata: 100% sure\n\n")
            try await waitForSubscribers(p8, channel: "events-a")
            _ = try await publish(
                p8,
                #"{"items": [{"channel": "events-a", "id": "8", "prev-id": "7", "formats": {"http-stream": "#
                    + #"{"content": "id: %I\ndata: x\n\n", "content-filters": ["build-id"]}}}]}"#
            )
            let live = try await client.readChunks(until: "x\n\n")
            #expect(String(decoding: live.body, as: UTF8.self) == "id: a:8\ndata: x\n\n")
        }
    }

    @Test func aFilterErrorAnswers502ToALongPollAndEndsAStream() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["*,debug 127.0.0.1:\(backend.port)"]) { p8 in
            let poll = try await RawHTTPConnection.connect(port: p8.httpPort)
            let pollPath = gripPath(
                [("Grip-Hold", "response"), ("Grip-Channel", "vs; filter=var-subst")],
                body: "timeout\n"
            )
            try await poll.send("GET \(pollPath) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let stream = try await RawHTTPConnection.connect(port: p8.httpPort)
            let streamPath = gripPath(
                [("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", "vs; filter=var-subst")],
                body: "open\n"
            )
            try await stream.send("GET \(streamPath) HTTP/1.1\r\nHost: example.com\r\n\r\n")
            _ = try await stream.readHead()
            _ = try await stream.readChunks(until: "open\n")
            try await waitForSubscribers(p8, channel: "vs", count: 2)
            _ = try await publish(
                p8,
                #"{"items": [{"channel": "vs", "formats": {"http-response": {"body": "%(who)s"}, "#
                    + #""http-stream": {"content": "%(who)s"}}}]}"#
            )
            let answer = try await poll.readResponse()
            #expect(answer.status == 502)
            #expect(
                String(decoding: answer.body, as: UTF8.self) == "filter error: No such variable 'who' at position 6\n"
            )
            let rest = try await stream.readChunks()
            #expect(rest.ended)
            #expect(
                String(decoding: rest.body, as: UTF8.self) == "\n\nfilter error: No such variable 'who' at position 6\n"
            )
        }
    }

    @Test func concurrentNextLinksForOneURIShareARequestAndOtherQueriesDoNot() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            var clients: [RawHTTPConnection] = []
            for link in ["/held?body=one", "/held?body=one", "/held?body=two"] {
                let client = try await RawHTTPConnection.connect(port: p8.httpPort)
                let path = gripPath(
                    [
                        ("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", "nl"),
                        ("Grip-Link", "<\(link)>; rel=next"),
                    ],
                    body: "open\n"
                )
                try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
                _ = try await client.readHead()
                _ = try await client.readChunks(until: "open\n")
                clients.append(client)
            }
            try await waitForSubscribers(p8, channel: "nl", count: 3)
            // recover makes every stream fetch its next link at once; the backend holds its answers meanwhile.
            let recover = try await RawHTTPConnection.connect(port: p8.publishPort)
            try await recover.send("POST /recover HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
            #expect(try await recover.readResponse().status == 200)
            #expect(try await waitForCounter(p8, "next_links_shared", 1))
            #expect(try await eventually(timeout: .seconds(15)) { backend.requests.filter(\.isHeld).count == 2 })
            backend.openGate()
            for (client, body) in zip(clients, ["one", "one", "two"]) {
                let rest = try await client.readChunks(timeout: .seconds(15))
                #expect(rest.ended)
                #expect(String(decoding: rest.body, as: UTF8.self) == body)
            }
            #expect(backend.requests.filter(\.isHeld).map(\.uri).sorted() == ["/held?body=one", "/held?body=two"])
            #expect(try await counters(p8)["next_links_shared"] == 1)
        }
    }
}

/// The Pushpin 1.37-1.41 configuration behaviours users rely on (issue 18).
@Suite struct PushpinConfigParityTests {
    @Test func theRoutesFileIsReloadedWhenItChangesOrIsReplaced() async throws {
        let first = try await TestBackend.start()
        let second = try await TestBackend.start()
        defer {
            Task {
                await first.stop()
                await second.stop()
            }
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("p8-routes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let routes = directory.appendingPathComponent("routes")
        try "* 127.0.0.1:\(first.port)\n".write(to: routes, atomically: false, encoding: .utf8)
        try await withRunningP8Server(routesFile: routes.path) { p8 in
            #expect(try await Self.get(p8) == 200)
            #expect(first.requests.count == 1)
            // Edited in place.
            try "* 127.0.0.1:\(second.port)\n".write(to: routes, atomically: false, encoding: .utf8)
            #expect(try await Self.eventuallyRoutedTo(second, p8))
            // Replaced by a rename, as editors and config tools do.
            try "* 127.0.0.1:\(first.port)\n".write(to: routes, atomically: true, encoding: .utf8)
            #expect(try await Self.eventuallyRoutedTo(first, p8))
        }
    }

    @Test func aClientThatHalfClosesAfterItsRequestsGetsTheAnswersThenTheConnectionCloses() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            try await client.sendThenCloseOutput(
                "GET /plain?body=first HTTP/1.1\r\nHost: example.com\r\n\r\n"
                    + "GET /plain?body=second HTTP/1.1\r\nHost: example.com\r\n\r\n"
            )
            let first = try await client.readResponse()
            #expect(String(decoding: first.body, as: UTF8.self) == "first")
            let second = try await client.readResponse()
            #expect(second.status == 200)
            #expect(String(decoding: second.body, as: UTF8.self) == "second")
            try await client.waitForClose(timeout: .seconds(15))
        }
    }

    @Test func anIdleConnectionThatHalfClosesIsClosed() async throws {
        try await withRunningP8Server { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            try await client.closeOutput()
            try await client.waitForClose(timeout: .seconds(15))
        }
    }

    private static func get(_ p8: RunningP8) async throws -> Int {
        let client = try await RawHTTPConnection.connect(port: p8.httpPort)
        try await client.send("GET /plain HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        let status = try await client.readResponse().status
        await client.close()
        return status
    }

    /// Sends requests until one reaches `backend` (15 s at most).
    private static func eventuallyRoutedTo(_ backend: TestBackend, _ p8: RunningP8) async throws -> Bool {
        let before = backend.requests.count
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            _ = try await Self.get(p8)
            if backend.requests.count > before { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func anIPv6RouteTargetIsProxiedTo() async throws {
        let backend = try await TestBackend.start(host: "::1")
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* [::1]:\(backend.port)"]) { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.httpPort)
            try await client.send("GET /plain?body=over-ipv6 HTTP/1.1\r\nHost: example.com\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == "over-ipv6")
        }
    }
}

extension EchoedRequest {
    fileprivate var isHeld: Bool { self.uri.hasPrefix("/held") }
}

/// The publish side's counters, from the control API's `GET /stats`.
func counters(_ p8: RunningP8) async throws -> [String: Int] {
    let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
    try await connection.send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
    let response = try await connection.readResponse()
    await connection.close()
    guard case .object(let root)? = JSONValue.parse(response.body), case .object(let counters)? = root["counters"]
    else {
        throw HoldTestError("unexpected /stats body")
    }
    return counters.compactMapValues { value -> Int? in
        guard case .int(let count) = value else { return nil }
        return count
    }
}

/// Waits (15 s at most) until a counter reaches `value`.
func waitForCounter(_ p8: RunningP8, _ name: String, _ value: Int) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(15)
    while ContinuousClock.now < deadline {
        if try await counters(p8)[name] ?? 0 >= value { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}
