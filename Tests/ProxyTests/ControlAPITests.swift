import Foundation
import GRDB
import GRIP
import Logging
import Runner
import Store
import Testing

/// The HTTP control API on `[handler] push_in_http_port`, through real sockets (grip-spec §4.2).
@Suite("The HTTP publish API", .timeLimit(.minutes(1)))
struct ControlAPITests {
    static let streamItem = #"{"channel":"c","formats":{"http-stream":{"content":"x"}}}"#

    @Test("/ names the API, whatever the method")
    func root() async throws {
        try await withRunningP8Server { p8 in
            let response = try await control(p8, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            #expect(response.status == 200)
            #expect(response.text == "Pushpin API\n")
            #expect(response.header("Content-Type") == "text/plain")
            #expect(response.header("Connection") == "close")
            #expect(try await control(p8, post("/", "")).text == "Pushpin API\n")
        }
    }

    @Test("a keep-alive connection carries publish after publish, pipelined too; Connection: close ends it")
    func keepAlive() async throws {
        try await withRunningP8Server { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.publishPort)
            for number in 1...2 {
                try await client.send(post("/publish/", Self.item(id: "k\(number)")))
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("Connection") == nil)
            }
            // Two requests in one write are answered in order on the same connection.
            try await client.send(post("/publish/", Self.item(id: "k3")) + post("/publish", Self.item(id: "k4")))
            #expect(try await client.readResponse().text == "Published\n")
            #expect(try await client.readResponse().text == "Published\n")
            try await client.send(
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            let last = try await client.readResponse()
            #expect(last.header("Connection") == "close")
            try await client.waitForClose()
            #expect(try await storedIDs(p8, channel: "c") == ["k1", "k2", "k3", "k4"])
        }
    }

    @Test("HTTP/1.0 closes after the response unless it asks for keep-alive")
    func keepAliveHTTP10() async throws {
        try await withRunningP8Server { p8 in
            let closing = try await control(p8, "GET / HTTP/1.0\r\n\r\n")
            #expect(closing.header("Connection") == "close")

            let client = try await RawHTTPConnection.connect(port: p8.publishPort)
            for _ in 1...2 {
                try await client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.text == "Pushpin API\n")
                #expect(response.header("Connection") == "keep-alive")
            }
            await client.close()
        }
    }

    @Test("refusals answered before the body is read close the connection")
    func refusalsClose() async throws {
        try await withRunningP8Server { p8 in
            let response = try await control(p8, "GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(response.status == 404)
            #expect(response.header("Connection") == "close")
        }
    }

    static func item(id: String) -> String {
        #"{"items":[{"channel":"c","id":"\#(id)","formats":{"http-stream":{"content":"x"}}}]}"#
    }

    @Test("a client that half-closes after its request still gets the answer")
    func halfClose() async throws {
        try await withRunningP8Server { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.publishPort)
            try await client.sendThenCloseOutput(post("/publish/", Self.streamItems))
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "Published\n")
            #expect(try await storedIDs(p8, channel: "c").count == 1)
            await client.close()
        }
    }

    @Test("a client that half-closes behind a pipelined request cut short gets the first answer, then the close")
    func halfCloseMidRequest() async throws {
        try await withRunningP8Server { p8 in
            let client = try await RawHTTPConnection.connect(port: p8.publishPort)
            let cutShort = String(post("/publish/", Self.streamItems).dropLast(5))
            try await client.sendThenCloseOutput(post("/publish/", Self.streamItems) + cutShort)
            let response = try await client.readResponse()
            #expect(response.status == 200)
            // At once, not at the 30 s read timeout: nothing more can arrive.
            try await client.waitForClose(timeout: .seconds(10))
            #expect(try await storedIDs(p8, channel: "c").count == 1)
            await client.close()
        }
    }

    @Test("errors are text/plain even for a client that asks for JSON, as Pushpin's")
    func errorsAreText() async throws {
        try await withRunningP8Server { p8 in
            let response = try await control(p8, post("/publish/", "{}", accept: "application/json"))
            #expect(response.status == 400)
            #expect(response.header("Content-Type") == "text/plain")
            #expect(response.text == "Invalid format: object does not contain 'items'\n")
        }
    }

    @Test("POST /publish and /publish/ answer Published, as text or JSON by Accept")
    func published() async throws {
        try await withRunningP8Server { p8 in
            for path in ["/publish", "/publish/"] {
                let response = try await control(p8, post(path, #"{"items":[]}"#))
                #expect(response.status == 200, "\(path)")
                #expect(response.text == "Published\n")
                #expect(response.header("Content-Type") == "text/plain")
            }
            let json = try await control(p8, post("/publish/", Self.streamItems, accept: "application/json"))
            #expect(json.status == 200)
            #expect(json.text == "{\"message\":\"Published\"}\n")
            #expect(json.header("Content-Type") == "application/json")
        }
    }

    static let streamItems = #"{"items":["# + streamItem + "]}"

    @Test(
        "Accept: the last acceptable entry wins; nothing acceptable is 406",
        arguments: [
            ("text/plain", "Published\n"),
            ("*/*", "Published\n"),
            ("application/json, text/plain", "Published\n"),
            ("text/html, application/*;q=0.5", "{\"message\":\"Published\"}\n"),
            ("image/png", "Not Acceptable. Supported formats are text/plain and application/json.\n"),
        ]
    )
    func acceptNegotiation(accept: String, body: String) async throws {
        try await withRunningP8Server { p8 in
            let response = try await control(p8, post("/publish/", #"{"items":[]}"#, accept: accept))
            #expect(response.status == (body.hasPrefix("Not") ? 406 : 200))
            #expect(response.text == body)
        }
    }

    @Test("wrong methods get 405 with Allow; other paths and query strings 404")
    func methodsAndPaths() async throws {
        try await withRunningP8Server { p8 in
            for path in ["/publish/", "/recover"] {
                let response = try await control(p8, "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(response.status == 405)
                #expect(response.header("Allow") == "POST")
                #expect(response.text == "Method not allowed: GET.\n")
            }
            let stats = try await control(p8, post("/stats", ""))
            #expect(stats.status == 405)
            #expect(stats.header("Allow") == "GET")
            for request in [
                "GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n",
                post("/publish/?x=1", #"{"items":[]}"#),
                post("/publish//", #"{"items":[]}"#),
            ] {
                let response = try await control(p8, request)
                #expect(response.status == 404)
                #expect(response.text == "Not Found\n")
            }
        }
    }

    @Test(
        "bad publish bodies get 400 with Pushpin's texts",
        arguments: [
            ("{not json", "Body is not valid JSON.\n"),
            ("[]", "Invalid format.\n"),
            ("{}", "Invalid format: object does not contain 'items'\n"),
            (#"{"items": {}}"#, "Invalid format: object contains 'items' with wrong type\n"),
            (
                #"{"items": [{"formats": {"http-stream": {"content": "x"}}}]}"#,
                "Invalid format: publish item object does not contain 'channel'\n"
            ),
            (#"{"items": [{"channel": "c"}]}"#, "Invalid format: no formats specified\n"),
            (
                #"{"items": [{"channel": "c", "formats": {"http-stream": {}}}]}"#,
                "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'\n"
            ),
            (
                #"{"items": [{"channel": "c", "formats": {"http-response": {"code": 200}}}]}"#,
                "Invalid format: 'http-response' does not contain 'body', 'body-bin', or 'body-patch'\n"
            ),
        ]
    )
    func badRequests(body: String, text: String) async throws {
        try await withRunningP8Server { p8 in
            let response = try await control(p8, post("/publish/", body))
            #expect(response.status == 400)
            #expect(response.text == text)
        }
    }

    @Test(
        "published headers that would break HTTP are refused",
        arguments: [
            #"["X-Split", "a\r\nInjected: yes"]"#,
            #"["X-Newline", "a\nb"]"#,
            #"["Bad Name", "x"]"#,
            #"["Connection", "close"]"#,
            #"["Transfer-Encoding", "chunked"]"#,
            #"["Content-Length", "5"]"#,
            #"["Upgrade", "websocket"]"#,
        ]
    )
    func forbiddenHeaders(header: String) async throws {
        try await withRunningP8Server { p8 in
            let body =
                #"{"items":[{"channel":"h","formats":{"http-response":{"headers":[\#(header)],"body":"x"}}}]}"#
            let response = try await control(p8, post("/publish/", body))
            #expect(response.status == 400)
            #expect(response.text.hasPrefix("Invalid format: 'http-response' contains header"), "\(response.text)")
            #expect(try await channels(p8).isEmpty)
        }
    }

    @Test("one bad item rejects the whole batch: nothing is stored")
    func badBatch() async throws {
        try await withRunningP8Server { p8 in
            let body = #"{"items":[\#(Self.streamItem),{"formats":{"http-stream":{"content":"y"}}}]}"#
            let response = try await control(p8, post("/publish/", body))
            #expect(response.status == 400)
            #expect(try await channels(p8).isEmpty)
        }
    }

    @Test("a 200 means durable: the items are in the database, in order, and a re-sent id is stored once")
    func durableAcknowledgement() async throws {
        try await withRunningP8Server { p8 in
            let items = (1...3).map { number in
                #"{"channel":"news","id":"n\#(number)","formats":{"http-stream":{"content":"item \#(number)\n"}}}"#
            }
            let response = try await control(p8, post("/publish/", #"{"items":[\#(items.joined(separator: ","))]}"#))
            #expect(response.status == 200)
            // Read at once, from another connection to the file, as p8ctl does.
            #expect(try await storedIDs(p8, channel: "news") == ["n1", "n2", "n3"])

            let again = try await control(p8, post("/publish/", #"{"items":[\#(items[2])]}"#))
            #expect(again.status == 200)
            #expect(try await storedIDs(p8, channel: "news") == ["n1", "n2", "n3"])
        }
    }

    @Test("a database that fails the commit gives 500 and publishes nothing; publishing works again after")
    func storeFailure() async throws {
        try await withRunningP8Server { p8 in
            // A real SQLite failure: a trigger, added through a second connection, aborts every item insert.
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            let database = try DatabaseQueue(path: p8.databasePath, configuration: configuration)
            try await database.write { db in
                try db.execute(
                    sql: "CREATE TRIGGER failing BEFORE INSERT ON item BEGIN SELECT RAISE(ABORT, 'test'); END"
                )
            }
            let failed = try await control(p8, post("/publish/", Self.streamItems))
            #expect(failed.status == 500)
            #expect(failed.text == "Publish failed: the items could not be stored; nothing was published.\n")
            #expect(try await channels(p8).isEmpty)

            try await database.write { db in
                try db.execute(sql: "DROP TRIGGER failing")
            }
            #expect(try await control(p8, post("/publish/", Self.streamItems)).status == 200)
            #expect(try await storedIDs(p8, channel: "c").count == 1)
        }
    }

    @Test("POST /recover answers Updated; a POST without Content-Length gets 411, chunked too")
    func recoverAndLength() async throws {
        try await withRunningP8Server { p8 in
            let recovered = try await control(p8, post("/recover", ""))
            #expect(recovered.status == 200)
            #expect(recovered.text == "Updated\n")
            let json = try await control(p8, post("/recover/", "", accept: "application/json"))
            #expect(json.text == "{\"message\":\"Updated\"}\n")

            let noLength = try await control(p8, "POST /recover HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(noLength.status == 411)
            #expect(noLength.text == "Request requires Content-Length.\n")
            let chunked = try await control(
                p8,
                "POST /publish/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
            )
            #expect(chunked.status == 411)
        }
    }

    @Test("a body over the limit gets 413 as soon as Content-Length announces it; a body at the limit is read")
    func bodyTooLarge() async throws {
        try await withRunningP8Server { p8 in
            // Only the head is sent: the answer must not wait for the body.
            let announced = try await control(
                p8,
                "POST /publish/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1000001\r\n\r\n"
            )
            #expect(announced.status == 413)
            #expect(announced.text == "Request body too large.\n")
        }
        try await withRunningP8Server(config: "[handler]\npush_in_http_max_body_size=100") { p8 in
            let padded = #"{"items":[]}"# + String(repeating: " ", count: 88)
            #expect(try await control(p8, post("/publish/", padded)).status == 200)
            let over = try await control(p8, post("/publish/", padded + " "))
            #expect(over.status == 413)
            #expect(over.text == "Request body too large.\n")
        }
    }

    @Test("unreadable requests get Pushpin's 400 texts; Expect: 100-continue is answered")
    func transportErrors() async throws {
        try await withRunningP8Server { p8 in
            let big = try await control(
                p8,
                "GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "x", count: 11_000))\r\n\r\n"
            )
            #expect(big.status == 400)
            #expect(big.text == "Request header too large.\n")
            let garbage = try await control(p8, "HELLO\r\n\r\n")
            #expect(garbage.status == 400)
            #expect(garbage.text == "Failed to parse request header.\n")
            let badLength = try await control(p8, "POST /recover HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
            #expect(badLength.status == 400)

            let client = try await RawHTTPConnection.connect(port: p8.publishPort)
            try await client.send(
                "POST /publish/ HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\n"
            )
            let interim = try await client.readHead()
            #expect(interim.status == 100)
            try await client.send(#"{"items":[]}"#)
            let response = try await client.readResponse()
            #expect(response.status == 200)
            await client.close()
        }
    }

    @Test("with push_in_http_key, POSTs need a valid unexpired Bearer JWT; GET / does not")
    func authentication() async throws {
        try await withRunningP8Server(config: "[handler]\npush_in_http_key=publish-secret") { p8 in
            let key = SigningKey(bytes: Array("publish-secret".utf8))
            let now = Int(Date().timeIntervalSince1970)
            let valid = GripSignature.token(issuer: "test", key: key, expiresAt: now + 60)
            let expired = GripSignature.token(issuer: "test", key: key, expiresAt: now - 10)
            let wrongKey = GripSignature.token(
                issuer: "test",
                key: SigningKey(bytes: Array("other".utf8)),
                expiresAt: now + 60
            )
            for authorization in [nil, "Bearer \(expired)", "Bearer \(wrongKey)", "Basic dXNlcjpwYXNz", "Bearer"] {
                let response = try await control(p8, post("/publish/", Self.streamItems, authorization: authorization))
                #expect(response.status == 401, "\(authorization ?? "none")")
                #expect(response.header("WWW-Authenticate") == "Bearer")
                #expect(!response.text.isEmpty)
            }
            #expect(try await channels(p8).isEmpty)
            #expect(try await control(p8, post("/recover", "")).status == 401)
            #expect(try await control(p8, "GET /stats HTTP/1.1\r\nHost: a\r\n\r\n").status == 401)
            #expect(try await control(p8, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").status == 200)

            let accepted = try await control(p8, post("/publish/", Self.streamItems, authorization: "Bearer \(valid)"))
            #expect(accepted.status == 200)
            #expect(try await channels(p8) == ["c"])
        }
        try await withRunningP8Server { p8 in
            // Without a key, Authorization is ignored, as in Pushpin.
            let response = try await control(p8, post("/publish/", Self.streamItems, authorization: "Bearer junk"))
            #expect(response.status == 200)
        }
    }

    @Test("GET /stats: counters, live subscribers by channel, and the store's epoch")
    func stats() async throws {
        try await withRunningP8Server { p8 in
            #expect(try await control(p8, post("/publish/", Self.streamItems)).status == 200)
            let response = try await control(p8, "GET /stats HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "application/json")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
            let counters = try #require(object["counters"] as? [String: Int])
            #expect(counters["items_received"] == 1)
            #expect(counters["items_committed"] == 1)
            #expect(counters["holds_active"] == 0)
            #expect(object["channels"] as? [String: Any] != nil)
            let store = try #require(object["store"] as? [String: String])
            let database = try await ChannelStore.openReadOnly(path: p8.databasePath, logger: quietLogger)
            #expect(store["epoch"] == database.epoch)
        }
    }

    @Test("the readiness line names the publish address after http=")
    func readinessLine() {
        let readiness = P8Server.Readiness(
            http: [ListenAddress(host: "127.0.0.1", port: 7999)],
            publish: ListenAddress(host: "127.0.0.1", port: 5561)
        )
        #expect(readiness.line == "p8 ready http=127.0.0.1:7999 publish=127.0.0.1:5561")
    }
}

private let quietLogger = Logger(label: "control-tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A `POST` with `Content-Length` (and `Accept`/`Authorization` when given).
private func post(_ path: String, _ body: String, accept: String? = nil, authorization: String? = nil) -> String {
    var request = "POST \(path) HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    if let accept {
        request += "Accept: \(accept)\r\n"
    }
    if let authorization {
        request += "Authorization: \(authorization)\r\n"
    }
    return request + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
}

/// Sends one raw request to the publish API and reads the answer; an answer with `Connection: close` must be
/// followed by the close.
private func control(_ p8: RunningP8, _ request: String) async throws -> RawResponse {
    let client = try await RawHTTPConnection.connect(port: p8.publishPort)
    try await client.send(request)
    let response = try await client.readResponse()
    if response.header("Connection") == "close" {
        try await client.waitForClose()
    }
    await client.close()
    return response
}

/// The channels in the server's database, read as `p8ctl` reads it.
private func channels(_ p8: RunningP8) async throws -> [String] {
    let store = try await ChannelStore.openReadOnly(path: p8.databasePath, logger: quietLogger)
    return try await store.channelSummaries().map(\.name)
}

private func storedIDs(_ p8: RunningP8, channel: String) async throws -> [String] {
    let store = try await ChannelStore.openReadOnly(path: p8.databasePath, logger: quietLogger)
    return try await store.read(channel: channel, after: .sequence(0)).items?.map(\.id) ?? []
}
