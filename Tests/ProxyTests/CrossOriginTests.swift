import Foundation
import GRIP
import Testing

/// Auto cross-origin end to end (grip-spec §2.9): a real P-8 with `aco` routes (or `auto_cross_origin`), the real
/// test backend, held responses released by real publishes.
@Suite struct CrossOriginTests {
    @Test func aRelayedResponseGetsCORSHeadersWithoutOverwritingTheBackends() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["*,aco 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                let path = corsPath([
                    ("X-Custom", "1"), ("Access-Control-Max-Age", "60"), ("Cache-Control", "no-cache"),
                ])
                try await client.send(
                    "GET \(path) HTTP/1.1\r\nHost: example.com\r\nOrigin: http://app.example\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("Access-Control-Allow-Origin") == "http://app.example")
                #expect(response.header("Access-Control-Allow-Credentials") == "true")
                #expect(response.header("Access-Control-Allow-Methods") == "OPTIONS, HEAD, GET, POST, PUT, DELETE")
                #expect(response.headers("Access-Control-Max-Age") == ["60"])
                #expect(response.header("Access-Control-Expose-Headers") == "X-Custom")
                #expect(response.header("Access-Control-Allow-Headers") == nil)
                #expect(response.text == "hello\n")
            }
        }
    }

    @Test func aPreflightIsForwardedAndAnsweredWithWhatItAskedFor() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["*,aco 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "OPTIONS /plain?status=204 HTTP/1.1\r\nHost: example.com\r\nOrigin: http://app.example\r\n"
                        + "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: X-A, X-B\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.status == 204)
                #expect(response.header("Access-Control-Allow-Methods") == "PUT")
                #expect(response.header("Access-Control-Allow-Headers") == "X-A, X-B")
                #expect(response.header("Access-Control-Allow-Origin") == "http://app.example")
                #expect(response.header("Access-Control-Max-Age") == "3600")
                #expect(backend.requests.last?.method == "OPTIONS")
            }
        }
    }

    @Test func aRouteWithoutACOGetsNoCORSHeaders() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "GET /plain?body=x&callback=cb HTTP/1.1\r\nHost: example.com\r\nOrigin: http://a.example\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.header("Access-Control-Allow-Origin") == nil)
                #expect(response.text == "x")
            }
        }
    }

    @Test func autoCrossOriginCoversEveryRouteAndTheProxysOwnErrors() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(
                routes: ["a.example 127.0.0.1:\(backend.port)"],
                config: "[proxy]\nauto_cross_origin=true"
            ) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /plain HTTP/1.1\r\nHost: a.example\r\n\r\n")
                #expect(try await client.readResponse().header("Access-Control-Allow-Origin") == "*")
                try await client.send("GET /plain HTTP/1.1\r\nHost: other.example\r\nOrigin: http://o.example\r\n\r\n")
                let error = try await client.readResponse()
                #expect(error.status == 502)
                #expect(error.header("Access-Control-Allow-Origin") == "http://o.example")
            }
        }
    }

    @Test func aHeldLongPollAndAStreamCarryCORSHeaders() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["*,aco 127.0.0.1:\(backend.port)"]) { p8 in
                let poll = try await RawHTTPConnection.connect(port: p8.httpPort)
                let pollPath = corsPath([("Grip-Hold", "response"), ("Grip-Channel", "aco-lp")], body: "timeout\n")
                try await poll.send(
                    "GET \(pollPath) HTTP/1.1\r\nHost: example.com\r\nOrigin: http://app.example\r\n\r\n"
                )
                let stream = try await RawHTTPConnection.connect(port: p8.httpPort)
                let streamPath = corsPath(
                    [("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", "aco-st")],
                    body: "open\n"
                )
                try await stream.send("GET \(streamPath) HTTP/1.1\r\nHost: example.com\r\n\r\n")
                let streamHead = try await stream.readHead()
                #expect(streamHead.header("Access-Control-Allow-Origin") == "*")
                #expect(streamHead.header("Access-Control-Allow-Credentials") == "true")
                try await waitForChannelSubscribers(p8, ["aco-lp", "aco-st"])
                try await publishJSON(
                    p8,
                    #"{"items": [{"channel": "aco-lp", "formats": {"http-response": {"headers": {"X-Pub": "1"}, "#
                        + #""body": "released\n"}}}, {"channel": "aco-st", "formats": {"http-stream": "#
                        + #"{"content": "item\n"}}}]}"#
                )
                let released = try await poll.readResponse(timeout: .seconds(15))
                #expect(released.text == "released\n")
                #expect(released.header("Access-Control-Allow-Origin") == "http://app.example")
                #expect(released.header("Access-Control-Expose-Headers") == "X-Pub")
                let streamed = try await stream.readChunks(until: "item\n", timeout: .seconds(15))
                #expect(String(decoding: streamed.body, as: UTF8.self) == "open\nitem\n")
            }
        }
    }

    @Test func jsonpExtendedWrapsStatusHeadersAndBody() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["*,aco 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "GET /plain?status=404&body=say+%22hi%22&header=Cache-Control:max-age%3D5&callback=app.cb "
                        + "HTTP/1.1\r\nHost: example.com\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("Content-Type") == "application/javascript")
                #expect(response.header("Cache-Control") == "max-age=5")
                #expect(response.header("Access-Control-Allow-Origin") == nil)
                #expect(
                    response.text
                        == #"/**/app.cb({"code": 404, "reason": "Not Found", "headers": {"Cache-Control":"max-age=5","#
                        + #""Content-Length":"8"}, "body": "say \"hi\""});"# + "\n"
                )
                // The callback parameter is not forwarded.
                #expect(backend.requests.last?.uri.contains("callback") == false)
                // The connection carries the next request.
                try await client.send("GET /plain?body=next HTTP/1.1\r\nHost: example.com\r\n\r\n")
                #expect(try await client.readResponse().text == "next")
            }
        }
    }

    @Test func jsonpBasicSendsTheMethodHeadersAndBodyOfItsParameters() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["*,aco,jsonp_mode=basic 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                let headers = "%7B%22X-Token%22%3A%22t1%22%7D"
                try await client.send(
                    "GET /echo?_method=PUT&_headers=\(headers)&_body=abc&callback=cb&keep=1 HTTP/1.1\r\n"
                        + "Host: example.com\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.header("Content-Type") == "application/javascript")
                #expect(response.text.hasPrefix("/**/cb(method=PUT\nuri=/echo?keep=1\nbody-length=3\n"))
                // The backend's trailing newline is dropped before the call closes.
                #expect(response.text.hasSuffix("\n);\n") == false)
                #expect(response.text.hasSuffix(");\n"))
                let seen = try #require(backend.requests.last)
                #expect(seen.method == "PUT")
                #expect(seen.values("X-Token") == ["t1"])
                #expect(seen.values("Accept") == ["*/*"])
                #expect(String(decoding: seen.body, as: UTF8.self) == "abc")
            }
        }
    }

    @Test func jsonpBodyParameterWithADefaultCallback() async throws {
        try await withTestBackend { backend in
            let route = "*,aco,jsonp_body=json,jsonp_defcb=handle,jsonp_defmethod=POST 127.0.0.1:\(backend.port)"
            try await withRunningP8(routes: [route]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /echo?json=%5B1%5D HTTP/1.1\r\nHost: example.com\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.text.hasPrefix(#"/**/handle({"code": 200"#))
                let seen = try #require(backend.requests.last)
                #expect(seen.method == "POST")
                #expect(seen.uri == "/echo")
                #expect(seen.values("Content-Type") == ["application/json"])
                #expect(String(decoding: seen.body, as: UTF8.self) == "[1]")
            }
        }
    }

    @Test func invalidJSONPParametersAreRefused() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["*,aco 127.0.0.1:\(backend.port)"]) { port in
                for (query, message) in [
                    ("callback=", "Invalid callback parameter.\n"),
                    ("callback=alert(1)", "Invalid callback parameter.\n"),
                    ("callback=cb&_method=", "Invalid _method parameter.\n"),
                    ("callback=cb&_headers=%5B%5D", "Invalid _headers parameter.\n"),
                ] {
                    // A refused request ends its connection (its body might still be arriving).
                    let client = try await RawHTTPConnection.connect(port: port)
                    try await client.send("GET /plain?\(query) HTTP/1.1\r\nHost: example.com\r\n\r\n")
                    let response = try await client.readResponse()
                    #expect(response.status == 400, "\(query)")
                    #expect(response.text == message, "\(query)")
                }
                #expect(backend.requests.isEmpty)
            }
        }
    }

    @Test func jsonpWrapsAHeldLongPoll() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["*,aco 127.0.0.1:\(backend.port)"]) { p8 in
                let client = try await RawHTTPConnection.connect(port: p8.httpPort)
                let path = corsPath([("Grip-Hold", "response"), ("Grip-Channel", "jp")], body: "timeout\n")
                try await client.send("GET \(path)&callback=cb HTTP/1.1\r\nHost: example.com\r\n\r\n")
                try await waitForChannelSubscribers(p8, ["jp"])
                try await publishJSON(
                    p8,
                    #"{"items": [{"channel": "jp", "formats": {"http-response": {"code": 201, "body": "done"}}}]}"#
                )
                let response = try await client.readResponse(timeout: .seconds(15))
                #expect(response.status == 200)
                #expect(response.text.hasPrefix(#"/**/cb({"code": 201, "reason": "Created""#))
                #expect(response.text.hasSuffix(#""body": "done"});"# + "\n"))
            }
        }
    }
}

/// A `/plain` path answering with `headers` and `body` (encoded for the test backend's query decoding).
private func corsPath(_ headers: [(String, String)], body: String = "hello\n") -> String {
    var components = URLComponents()
    components.queryItems =
        headers.map { URLQueryItem(name: "header", value: "\($0.0): \($0.1)") } + [
            URLQueryItem(name: "body", value: body)
        ]
    let query = components.percentEncodedQuery ?? ""
    return "/plain?" + query.replacingOccurrences(of: "+", with: "%2B").replacingOccurrences(of: ";", with: "%3B")
}

private func publishJSON(_ p8: RunningP8, _ json: String) async throws {
    let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
    try await connection.send(
        "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
    )
    let response = try await connection.readResponse()
    await connection.close()
    #expect(response.status == 200, "\(response.text)")
}

/// Waits (up to 15 s) until every channel in `channels` has a subscriber.
private func waitForChannelSubscribers(_ p8: RunningP8, _ channels: [String]) async throws {
    let deadline = ContinuousClock.now + .seconds(15)
    while ContinuousClock.now < deadline {
        let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
        try await connection.send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try await connection.readResponse()
        await connection.close()
        if case .object(let root)? = JSONValue.parse(response.body), case .object(let known)? = root["channels"],
            channels.allSatisfy({ known[$0] != nil })
        {
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("no subscribers on \(channels)")
}
