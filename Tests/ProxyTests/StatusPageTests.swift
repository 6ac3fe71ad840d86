import Foundation
import GRIP
import P8TestSupport
import Testing

/// The status page on the publish API port: the page itself, and its live SSE stream of P-8's own stats.
@Suite struct StatusPageTests {
    @Test func thePageIsSelfContainedHTMLThatSubscribesToTheStream() async throws {
        try await withRunningP8Server { p8 in
            let response = try await Self.get(p8, "/status")
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "text/html; charset=utf-8")
            #expect(response.text.contains(#"new EventSource("/status/events" + location.search)"#))
            // No external asset: no script, style sheet or image is loaded from anywhere.
            #expect(!response.text.contains("src="))
            #expect(!response.text.contains("href="))
            #expect(!response.text.contains("@import"))
        }
    }

    @Test func theStreamFollowsHoldsChannelsAndPublishes() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
                let events = try await RawHTTPConnection.connect(port: p8.publishPort)
                try await events.send(
                    "GET /status/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
                )
                let head = try await events.readHead()
                #expect(head.status == 200)
                #expect(head.header("Content-Type") == "text/event-stream")
                let first = try await Self.nextSnapshot(events)
                #expect(first["held"] == .object(["response": .int(0), "stream": .int(0), "ws": .int(0)]))

                let stream = try await RawHTTPConnection.connect(port: p8.httpPort)
                try await stream.send(
                    "GET /plain?header=Grip-Hold:stream&header=Grip-Channel:status-ch&body=open%0A HTTP/1.1\r\n"
                        + "Host: example.com\r\n\r\n"
                )
                _ = try await stream.readHead()
                _ = try await Self.snapshot(events) { snapshot in
                    guard case .object(let held)? = snapshot["held"] else { return false }
                    return held["stream"] == .int(1)
                }
                let json =
                    #"{"items": [{"channel": "status-ch", "id": "n1", "formats": {"http-stream": {"content": "x\n"}}}]}"#
                let publisher = try await RawHTTPConnection.connect(port: p8.publishPort)
                try await publisher.send(
                    "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
                )
                #expect(try await publisher.readResponse().status == 200)
                // The counters are counted as the item is delivered, after the publish is acknowledged: the wait
                // covers them too.
                let published = try await Self.snapshot(events) { snapshot in
                    guard case .object(let counters)? = snapshot["counters"] else { return false }
                    return counters["items_received"] == .int(1)
                        && snapshot["channels"]
                            == .array([
                                .object([
                                    "name": .string("status-ch"), "subscribers": .int(1), "newest": .string("n1"),
                                    "sequence": .int(1),
                                ])
                            ])
                }
                guard case .object(let store)? = published["store"], case .object(let counters)? = published["counters"]
                else {
                    Issue.record("no store or counters in \(published)")
                    return
                }
                #expect(store["items"] == .int(1))
                #expect(counters["items_received"] == .int(1))
            }
        }
    }

    @Test func withAPublishKeyThePageAndStreamNeedAToken() async throws {
        let log = CapturedLog()
        try await withServerLogOnFailure(log) {
            try await Self.publishKeyNeedsAToken(log)
        }
    }

    /// Runs `body`; if it throws, records the server's log with the error (a connection closed without an
    /// answer was seen under load, with no trace of why).
    private func withServerLogOnFailure(_ log: CapturedLog, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            Issue.record("\(error); server log:\n\(log.text)")
        }
    }

    private static func publishKeyNeedsAToken(_ log: CapturedLog) async throws {
        try await withRunningP8Server(config: "[handler]\npush_in_http_key=status-secret", log: log) { p8 in
            #expect(try await Self.get(p8, "/status").status == 401)
            let key = SigningKey(bytes: Array("status-secret".utf8))
            let token = GripSignature.token(issuer: "ops", key: key, expiresAt: Int(Date().timeIntervalSince1970) + 60)
            #expect(try await Self.get(p8, "/status?token=\(token)").status == 200)
            #expect(try await Self.get(p8, "/status?token=wrong").status == 401)
            let events = try await RawHTTPConnection.connect(port: p8.publishPort)
            try await events.send("GET /status/events?token=\(token) HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try await events.readHead().status == 200)
            _ = try await Self.nextSnapshot(events)
        }
    }

    private static func get(_ p8: RunningP8, _ path: String) async throws -> RawResponse {
        let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
        try await connection.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try await connection.readResponse()
        await connection.close()
        return response
    }

    /// The next `data:` event of a status stream, parsed.
    private static func nextSnapshot(_ events: RawHTTPConnection) async throws -> [String: JSONValue] {
        while true {
            let chunk = try await events.readChunks(bytes: 1)
            let text = String(decoding: chunk.body, as: UTF8.self)
            if let start = text.range(of: "data: "),
                case .object(let snapshot)? = JSONValue.parse(
                    Array(text[start.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines).utf8)
                )
            {
                return snapshot
            }
        }
    }

    /// Reads snapshots until one satisfies `condition` (15 s at most).
    private static func snapshot(
        _ events: RawHTTPConnection,
        where condition: ([String: JSONValue]) -> Bool
    ) async throws -> [String: JSONValue] {
        let deadline = ContinuousClock.now + defaultWait
        var last = try await Self.nextSnapshot(events)
        while !condition(last), ContinuousClock.now < deadline {
            last = try await Self.nextSnapshot(events)
        }
        #expect(condition(last), "last snapshot: \(last)")
        return last
    }
}
