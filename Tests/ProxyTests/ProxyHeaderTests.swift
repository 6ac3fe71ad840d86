import GRIP
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("What the proxy adds to and removes from requests and responses", .timeLimit(.minutes(1)))
struct ProxyHeaderTests {
    @Test("every request carries a fresh Grip-Sig that verifies with the key; a client's own is replaced")
    func gripSignature() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "GET /echo HTTP/1.1\r\nHost: a\r\nGrip-Sig: forged.token.value\r\nGrip-Last: c; last-id=9\r\n\r\n"
                )
                _ = try await client.readResponse()
                let seen = try #require(backend.requests.last)
                let signatures = seen.values("Grip-Sig")
                #expect(signatures.count == 1)
                let key = SigningKey(bytes: Array(testSigningKey.utf8))
                let now = Int(time(nil))
                let claims = try #require(GripSignature.verify(signatures[0], key: key, now: now))
                #expect(claims.iss == "pushpin")
                #expect(claims.exp > now && claims.exp <= now + 3700)
                #expect(
                    GripSignature.verify(signatures[0], key: SigningKey(bytes: Array("wrong".utf8)), now: now) == nil
                )
                #expect(seen.values("Grip-Last").isEmpty)
                #expect(!seen.values("Grip-Feature").isEmpty)
                await client.close()
            }
        }
    }

    @Test("no Grip-Sig when the signing key is empty")
    func noSignatureWithoutKey() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"], config: "[proxy]\nsig_key=") { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
                _ = try await client.readResponse()
                #expect(backend.requests.last?.values("Grip-Sig") == [])
                await client.close()
            }
        }
    }

    @Test("X-Forwarded-For is added, or appended to")
    func forwardedFor() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
                _ = try await client.readResponse()
                #expect(backend.requests.last?.values("X-Forwarded-For") == ["127.0.0.1"])
                try await client.send("GET /echo HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n")
                _ = try await client.readResponse()
                #expect(backend.requests.last?.values("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"])
                await client.close()
            }
        }
    }

    @Test("hop-by-hop headers are not forwarded; route header= and host= apply")
    func hopByHopAndRouteHeaders() async throws {
        try await withTestBackend { backend in
            let routes = ["*,header=X-Route-Added:yes 127.0.0.1:\(backend.port),host=backend.example:1234"]
            try await withRunningP8(routes: routes) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Route-Added: client\r\n\r\n"
                )
                _ = try await client.readResponse()
                let seen = try #require(backend.requests.last)
                #expect(seen.values("X-Secret").isEmpty)
                #expect(seen.values("Keep-Alive").isEmpty)
                #expect(seen.values("TE").isEmpty)
                #expect(seen.values("X-Route-Added") == ["yes"])
                #expect(seen.values("Host") == ["backend.example:1234"])
                await client.close()
            }
        }
    }

    @Test("Grip-* response headers never reach the client; Grip-Status applies")
    func gripHeadersInPlainResponse() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "GET /plain?header=Grip-Foo:bar&header=X-Keep:1&header=Grip-Status:418%20Teapot HTTP/1.1\r\nHost: a\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.status == 418)
                #expect(response.reason == "Teapot")
                #expect(response.header("X-Keep") == "1")
                #expect(!response.headers.contains { $0.name.lowercased().hasPrefix("grip-") })
                #expect(response.text == "hello\n")
                await client.close()
            }
        }
    }

    @Test("a no_grip route passes Grip-* response headers through verbatim and adds no Grip-Sig")
    func noGripRoute() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["*,no_grip 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /plain?header=Grip-Foo:bar HTTP/1.1\r\nHost: a\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.header("Grip-Foo") == "bar")
                #expect(backend.requests.last?.values("Grip-Sig") == [])
                await client.close()
            }
        }
    }

    @Test("a JSON instruct without a hold is answered with its response")
    func jsonInstructWithoutHold() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "GET /plain?header=Content-Type:application/grip-instruct&body=%7B%22response%22%3A%20%7B%22code%22%3A%20202%2C%20%22reason%22%3A%20%22Taken%22%2C%20%22headers%22%3A%20%7B%22X-From%22%3A%20%22json%22%7D%2C%20%22body%22%3A%20%22from%20json%5Cn%22%7D%7D HTTP/1.1\r\nHost: a\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.status == 202)
                #expect(response.reason == "Taken")
                #expect(response.header("X-From") == "json")
                #expect(response.text == "from json\n")
                await client.close()
            }
        }
    }

    @Test("invalid GRIP instructions give 502; with debug on, the body says why")
    func invalidInstructions() async throws {
        try await withTestBackend { backend in
            let routes = [
                "*,path_beg=/dbg/,replace_beg=/,debug 127.0.0.1:\(backend.port)", "* 127.0.0.1:\(backend.port)",
            ]
            try await withRunningP8(routes: routes) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /plain?header=Grip-Hold:forever HTTP/1.1\r\nHost: a\r\n\r\n")
                let plain = try await client.readResponse()
                #expect(plain.status == 502)
                #expect(plain.text == "Error while proxying to origin.\n")
                try await client.send("GET /dbg/plain?header=Grip-Hold:forever HTTP/1.1\r\nHost: a\r\n\r\n")
                let debug = try await client.readResponse()
                #expect(debug.status == 502)
                #expect(debug.text.hasPrefix("Failed to parse accept instructions: Grip-Hold must be set to either"))
                await client.close()
            }
        }
    }
}
