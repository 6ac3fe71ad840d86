import P8TestSupport
import Testing

@Suite("The proxy's own error responses", .timeLimit(.minutes(1)))
struct ProxyErrorTests {
    @Test("no matching route gives 502 naming the host")
    func noRoute() async throws {
        try await withRunningP8(routes: ["only.example 127.0.0.1:1"]) { port in
            let client = try await RawHTTPConnection.connect(port: port)
            try await client.send("GET / HTTP/1.1\r\nHost: other.example:8080\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 502)
            #expect(response.text == "No route for host: other.example\n")
            await client.close()
        }
    }

    @Test("an unreachable backend gives 502; a second target is tried first")
    func backendDown() async throws {
        try await withTestBackend { backend in
            let routes = [
                "*,path_beg=/dead/ 127.0.0.1:1",
                "*,path_beg=/multi/ 127.0.0.1:1 127.0.0.1:\(backend.port)",
            ]
            try await withRunningP8(routes: routes) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /dead/x HTTP/1.1\r\nHost: a\r\n\r\n")
                let dead = try await client.readResponse()
                #expect(dead.status == 502)
                #expect(dead.text == "Error while proxying to origin.\n")
                await client.close()

                let second = try await RawHTTPConnection.connect(port: port)
                try await second.send("GET /multi/x HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(try await second.readResponse().status == 404)
                #expect(backend.requests.last?.uri == "/multi/x")
                await second.close()
            }
        }
    }

    @Test("a backend that does not answer gives 504 after the configured timeout")
    func backendTimeout() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(
                routes: ["* 127.0.0.1:\(backend.port)"],
                config: "[proxy]\nbackend_response_timeout=1"
            ) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 504)
                #expect(try await eventually { backend.openConnections == 0 })
                await client.close()
            }
        }
    }

    @Test("a malformed request gets 400 and the connection is closed")
    func malformedRequest() async throws {
        try await withRunningP8(routes: ["* 127.0.0.1:1"]) { port in
            let client = try await RawHTTPConnection.connect(port: port)
            try await client.send("GET / HTTP/1.1\r\nHost a\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 400)
            try await client.waitForClose()
        }
    }

    @Test("request headers over client_buffer_size get 431")
    func oversizedHeaders() async throws {
        try await withRunningP8(routes: ["* 127.0.0.1:1"], config: "[runner]\nclient_buffer_size=1024") { port in
            let client = try await RawHTTPConnection.connect(port: port)
            try await client.send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "x", count: 2000))\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 431)
            try await client.waitForClose()
        }
    }

    @Test("a GRIP response to a request body over 100,000 bytes gives 400")
    func requestTooLargeForGrip() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                let body = [UInt8](repeating: UInt8(ascii: "x"), count: 150_000)
                try await client.send(
                    Array("POST /plain?header=Grip-Foo:bar HTTP/1.1\r\nHost: a\r\nContent-Length: 150000\r\n\r\n".utf8)
                        + body
                )
                let response = try await client.readResponse()
                #expect(response.status == 400)
                #expect(response.text == "Request too large to accept GRIP instruct.\n")
                await client.close()
            }
        }
    }

    @Test("connections beyond client_maxconn are closed at once; the others are served")
    func connectionLimit() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(
                routes: ["* 127.0.0.1:\(backend.port)"],
                config: "[runner]\nclient_maxconn=1"
            ) { port in
                let first = try await RawHTTPConnection.connect(port: port)
                try await first.send("GET /plain?body=first HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(try await first.readResponse().text == "first")
                let second = try await RawHTTPConnection.connect(port: port)
                try await second.waitForClose()
                await first.close()
            }
        }
    }
}
