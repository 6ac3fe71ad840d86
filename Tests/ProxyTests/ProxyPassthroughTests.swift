import GRIP
import P8TestSupport
import Testing

@Suite("Proxying to a backend", .timeLimit(.minutes(1)))
struct ProxyPassthroughTests {
    @Test("status, reason, repeated headers and body pass through")
    func responsePassesThrough() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "GET /plain?status=201%20Created%20Here&body=hello%20world&header=X-One:1&header=Set-Cookie:a=1&header=Set-Cookie:b=2 HTTP/1.1\r\nHost: example.test\r\n\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.status == 201)
                #expect(response.reason == "Created Here")
                #expect(response.header("X-One") == "1")
                #expect(response.headers("Set-Cookie") == ["a=1", "b=2"])
                #expect(response.text == "hello world")
                await client.close()
            }
        }
    }

    @Test("keep-alive: several requests on one client connection reuse one backend connection")
    func keepAlive() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                for index in 0..<5 {
                    try await client.send("GET /plain?body=n\(index) HTTP/1.1\r\nHost: a\r\n\r\n")
                    let response = try await client.readResponse()
                    #expect(response.text == "n\(index)")
                }
                #expect(backend.connectionsAccepted == 1)
                await client.close()
            }
        }
    }

    @Test("pipelined requests are answered in order")
    func pipelining() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    (0..<3).map { "GET /plain?body=p\($0) HTTP/1.1\r\nHost: a\r\n\r\n" }.joined()
                )
                for index in 0..<3 {
                    #expect(try await client.readResponse().text == "p\(index)")
                }
                await client.close()
            }
        }
    }

    @Test("HEAD and 204 responses carry no body")
    func bodylessResponses() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("HEAD /plain?body=abcdef HTTP/1.1\r\nHost: a\r\n\r\n")
                let head = try await client.readResponse(bodyless: true)
                #expect(head.status == 200)
                #expect(head.header("Content-Length") == "6")
                try await client.send("GET /plain?status=204&body= HTTP/1.1\r\nHost: a\r\n\r\n")
                let noContent = try await client.readResponse()
                #expect(noContent.status == 204)
                // The connection is still in step: a further request gets its own answer.
                try await client.send("GET /plain?body=after HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(try await client.readResponse().text == "after")
                await client.close()
            }
        }
    }

    @Test("method, query, body and custom headers reach the backend")
    func requestPassesThrough() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "PUT /echo?a=1&b=%20x HTTP/1.1\r\nHost: conformance.example\r\nX-Custom: a b  c\r\nContent-Length: 5\r\n\r\nhello"
                )
                let response = try await client.readResponse()
                #expect(response.status == 200)
                let seen = try #require(backend.requests.last)
                #expect(seen.method == "PUT")
                #expect(seen.uri == "/echo?a=1&b=%20x")
                #expect(seen.body == Array("hello".utf8))
                #expect(seen.values("Host") == ["conformance.example"])
                #expect(seen.values("X-Custom") == ["a b  c"])
                await client.close()
            }
        }
    }

    @Test("a chunked upload reaches the backend whole")
    func chunkedUpload() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send(
                    "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                )
                #expect(try await client.readResponse().status == 200)
                #expect(backend.requests.last?.body == Array("hello world".utf8))
                await client.close()
            }
        }
    }

    @Test("large request and response bodies arrive intact")
    func largeBodies() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                let upload = TestBackend.pattern(3_000_000)
                try await client.send(
                    Array("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(upload.count)\r\n\r\n".utf8) + upload
                )
                let echoed = try await client.readResponse(timeout: .seconds(30))
                #expect(echoed.text.contains("body-length=3000000\n"))
                #expect(echoed.text.contains("body-checksum=\(Checksum.of(upload))\n"))

                try await client.send("GET /large?size=5000000 HTTP/1.1\r\nHost: a\r\n\r\n")
                let large = try await client.readResponse(timeout: .seconds(30))
                #expect(large.body.count == 5_000_000)
                #expect(large.body == TestBackend.pattern(5_000_000))
                await client.close()
            }
        }
    }

    @Test("the first chunk of a slow response reaches the client before the backend finishes")
    func streaming() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /gated?chunks=3 HTTP/1.1\r\nHost: a\r\n\r\n")
                let head = try await client.readHead()
                #expect(head.status == 200)
                #expect(head.header("Transfer-Encoding") == "chunked")
                let first = try await client.readBytes(Array("8\r\nchunk-0;\r\n".utf8).count)
                #expect(first == Array("8\r\nchunk-0;\r\n".utf8))
                backend.openGate()
                let rest = try await client.readBytes(Array("8\r\nchunk-1;\r\n8\r\nchunk-2;\r\n0\r\n\r\n".utf8).count)
                #expect(rest == Array("8\r\nchunk-1;\r\n8\r\nchunk-2;\r\n0\r\n\r\n".utf8))
                await client.close()
            }
        }
    }

    @Test("a client that disconnects mid-response leaves no backend connection behind")
    func clientDisconnect() async throws {
        try await withTestBackend { backend in
            try await withRunningP8(routes: ["* 127.0.0.1:\(backend.port)"]) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /gated HTTP/1.1\r\nHost: a\r\n\r\n")
                _ = try await client.readHead()
                #expect(backend.openConnections == 1)
                await client.close()
                #expect(try await eventually { backend.openConnections == 0 })
            }
        }
    }

    @Test("an ssl target is reached over TLS; its certificate is verified unless the target is insecure")
    func tlsBackend() async throws {
        try await withTestBackend(tls: true) { backend in
            let routes = [
                "*,path_beg=/insecure/ localhost:\(backend.port),ssl,insecure",
                "*,path_beg=/verified/ localhost:\(backend.port),ssl",
            ]
            try await withRunningP8(routes: routes) { port in
                let client = try await RawHTTPConnection.connect(port: port)
                try await client.send("GET /insecure/x HTTP/1.1\r\nHost: a\r\n\r\n")
                #expect(try await client.readResponse().status == 404)
                #expect(backend.requests.last?.uri == "/insecure/x")
                // The self-signed certificate is not trusted: the request never reaches the backend.
                try await client.send("GET /verified/x HTTP/1.1\r\nHost: a\r\n\r\n")
                let refused = try await client.readResponse()
                #expect(refused.status == 502)
                #expect(backend.requests.count == 1)
                await client.close()
            }
        }
    }
}
