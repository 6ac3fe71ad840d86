import GRIP
import NIOHTTP1
import Testing

@testable import Proxy

@Suite("Rewriting a client request for the backend (grip-spec §2.5)")
struct BackendRequestBuilderTests {
    private static let now = 1_800_000_000
    private static let key = SigningKey(bytes: Array("secret".utf8))

    private func builder(_ configure: (inout ProxyConfiguration) -> Void = { _ in }) throws -> BackendRequestBuilder {
        var configuration = try P8Configuration.parse(text: "", configDirectory: "/tmp", readFile: { _ in nil }).proxy
        configuration.sigKey = Self.key
        configure(&configuration)
        return BackendRequestBuilder(proxy: configuration, signatures: GripSignatureCache())
    }

    private func route(_ line: String) throws -> Route {
        try #require(RouteTable.parse(line).table.routes.first)
    }

    private func head(_ headers: [(String, String)], method: HTTPMethod = .GET, uri: String = "/") -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    private func rewrite(
        _ client: HTTPRequestHead,
        route line: String = "* 127.0.0.1:80",
        builder: BackendRequestBuilder,
        trusted: Bool = false,
        tls: Bool = false
    ) throws -> HTTPRequestHead {
        let route = try self.route(line)
        return builder.backendHead(
            for: client,
            originForm: client.uri,
            route: route,
            target: route.targets[0],
            clientAddress: "192.0.2.7",
            clientIsTLS: tls,
            trusted: trusted,
            now: Self.now
        )
    }

    @Test("the token is Pushpin's: HS256, iss and exp = now + 3600; route sig_iss/sig_key override")
    func signature() throws {
        let builder = try self.builder()
        let plain = try self.rewrite(self.head([("Host", "a")]), builder: builder)
        let token = try #require(plain.headers.first(name: "Grip-Sig"))
        #expect(
            GripSignature.verify(token, key: Self.key, now: Self.now) == .init(exp: Self.now + 3600, iss: "pushpin")
        )
        let routed = try self.rewrite(
            self.head([("Host", "a")]),
            route: "*,sig_iss=other,sig_key=routekey 127.0.0.1:80",
            builder: builder
        )
        let routeToken = try #require(routed.headers.first(name: "Grip-Sig"))
        let routeKey = SigningKey(bytes: Array("routekey".utf8))
        #expect(GripSignature.verify(routeToken, key: routeKey, now: Self.now)?.iss == "other")
    }

    @Test("a trusted upstream keeps its own Grip-* headers and gets no new signature")
    func trustedUpstream() throws {
        let upstreamKey = SigningKey(bytes: Array("upstream".utf8))
        let builder = try self.builder { $0.upstreamKey = upstreamKey }
        let upstreamToken = GripSignature.token(issuer: "edge", key: upstreamKey, expiresAt: Self.now + 60)
        let client = self.head([("Host", "a"), ("Grip-Sig", upstreamToken), ("Grip-Last", "c; last-id=1")])
        #expect(builder.isTrusted(client, now: Self.now))
        #expect(!builder.isTrusted(client, now: Self.now + 61))
        let rewritten = try self.rewrite(client, builder: builder, trusted: true)
        #expect(rewritten.headers["Grip-Sig"] == [upstreamToken])
        #expect(rewritten.headers["Grip-Last"] == ["c; last-id=1"])
        #expect(rewritten.headers["Grip-Feature"].isEmpty)
    }

    @Test("an empty upstream_key trusts nobody, even a token signed with an empty secret")
    func emptyUpstreamKey() throws {
        let builder = try self.builder { $0.upstreamKey = nil }
        let token = GripSignature.token(issuer: "x", key: SigningKey(bytes: []), expiresAt: Self.now + 60)
        #expect(!builder.isTrusted(self.head([("Grip-Sig", token)]), now: Self.now))
    }

    @Test("X-Forwarded-Proto: removed from clients, set for TLS per set_x_forwarded_protocol")
    func forwardedProto() throws {
        let client = self.head([("Host", "a"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Protocol", "https")])
        let plain = try self.rewrite(client, builder: try self.builder())
        #expect(plain.headers["X-Forwarded-Proto"].isEmpty && plain.headers["X-Forwarded-Protocol"].isEmpty)
        let tls = try self.rewrite(
            client,
            builder: try self.builder { $0.setXForwardedProtocol = .protoAndProtocol },
            tls: true
        )
        #expect(tls.headers["X-Forwarded-Proto"] == ["https"])
        #expect(tls.headers["X-Forwarded-Protocol"] == ["https"])
    }

    @Test("X-Forwarded-For: untouched without a rule; truncate and append; the trusted rule for trusted clients")
    func forwardedFor() throws {
        let client = self.head([("Host", "a"), ("X-Forwarded-For", "9.9.9.9")])
        let untouched = try self.rewrite(client, builder: try self.builder())
        #expect(untouched.headers["X-Forwarded-For"] == ["9.9.9.9"])
        let replaced = try self.rewrite(
            client,
            builder: try self.builder { $0.xForwardedFor = XForwardedForRule(truncate: 0, append: true) }
        )
        #expect(replaced.headers["X-Forwarded-For"] == ["192.0.2.7"])
        let trusted = try self.rewrite(
            client,
            builder: try self.builder { $0.xForwardedForTrusted = XForwardedForRule(truncate: nil, append: true) },
            trusted: true
        )
        #expect(trusted.headers["X-Forwarded-For"] == ["9.9.9.9, 192.0.2.7"])
    }

    @Test("replace_beg and path_rem rewrite the path and keep the query")
    func pathRewriting() throws {
        let builder = try self.builder()
        let replaced = try self.rewrite(
            self.head([("Host", "a")], method: .GET, uri: "/rb/abc?x=1"),
            route: "*,path_beg=/rb/,replace_beg=/rewritten/ 127.0.0.1:80",
            builder: builder
        )
        #expect(replaced.uri == "/rewritten/abc?x=1")
        let removed = try self.rewrite(
            self.head([("Host", "a")], method: .GET, uri: "/api/v1/x"),
            route: "*,path_beg=/api,path_rem=4 127.0.0.1:80",
            builder: builder
        )
        #expect(removed.uri == "/v1/x")
    }

    @Test("framing: chunked stays chunked, a bodiless POST gets Content-Length: 0, Expect is answered here")
    func framing() throws {
        let builder = try self.builder()
        let chunked = try self.rewrite(
            self.head([("Transfer-Encoding", "chunked"), ("Expect", "100-continue")], method: .POST, uri: "/"),
            builder: builder
        )
        #expect(chunked.headers["Transfer-Encoding"] == ["chunked"])
        #expect(chunked.headers["Expect"].isEmpty)
        let empty = try self.rewrite(self.head([], method: .POST, uri: "/"), builder: builder)
        #expect(empty.headers["Content-Length"] == ["0"])
        let get = try self.rewrite(self.head([], method: .GET, uri: "/"), builder: builder)
        #expect(get.headers["Content-Length"].isEmpty)
    }
}
