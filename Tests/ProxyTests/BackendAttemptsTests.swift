import GRIP
import NIOHTTP1
import Testing

@testable import Proxy

/// ``BackendAttempts``, event by event: target choice, failover and the retry on a fresh connection, without sockets.
@Suite("Choosing a backend target, failing over and retrying")
struct BackendAttemptsTests {
    @Test("a request starts at the first target and fails over to each next one, then is unavailable")
    func failsOverInOrder() {
        var attempts = BackendAttempts(targetCount: 3)
        let result1 = attempts.begin()
        #expect(result1 == .connect(index: 0, fresh: false))
        let result2 = attempts.connectFailed()
        #expect(result2 == .connect(index: 1, fresh: false))
        let result3 = attempts.connectFailed()
        #expect(result3 == .connect(index: 2, fresh: false))
        let result4 = attempts.connectFailed()
        #expect(result4 == .unavailable)
        #expect(attempts.index == 2)
    }

    @Test("without failover a failed connect is final")
    func noFailover() {
        var attempts = BackendAttempts(targetCount: 3, failover: false)
        let result5 = attempts.begin()
        #expect(result5 == .connect(index: 0, fresh: false))
        let result6 = attempts.connectFailed()
        #expect(result6 == .unavailable)
    }

    @Test("a route without targets is unavailable at once")
    func noTargets() {
        var attempts = BackendAttempts(targetCount: 0)
        let result7 = attempts.begin()
        #expect(result7 == .unavailable)
    }

    @Test("the next request starts at the first target again, or at the one settled on")
    func nextRequest() {
        var attempts = BackendAttempts(targetCount: 2)
        _ = attempts.begin()
        let result8 = attempts.connectFailed()
        #expect(result8 == .connect(index: 1, fresh: false))
        let result9 = attempts.begin(fromFirstTarget: false)
        #expect(result9 == .connect(index: 1, fresh: false))
        let result10 = attempts.begin()
        #expect(result10 == .connect(index: 0, fresh: false))
    }

    @Test("a reused connection closed before the response is retried once, on a fresh connection to the same target")
    func retriesOnceOnFreshConnection() {
        var attempts = BackendAttempts(targetCount: 2)
        _ = attempts.begin()
        _ = attempts.connectFailed()
        #expect(
            attempts.closedBeforeResponse(connectionWasReused: true, replayable: true)
                == .connect(index: 1, fresh: true)
        )
        let result11 = attempts.closedBeforeResponse(connectionWasReused: true, replayable: true)
        #expect(result11 == nil)
        // A new request may be retried again.
        _ = attempts.begin()
        #expect(
            attempts.closedBeforeResponse(connectionWasReused: true, replayable: true)
                == .connect(index: 0, fresh: true)
        )
    }

    @Test("a new connection, or a body no longer at hand, is not retried")
    func noRetry() {
        var attempts = BackendAttempts(targetCount: 1)
        _ = attempts.begin()
        let result12 = attempts.closedBeforeResponse(connectionWasReused: false, replayable: true)
        #expect(result12 == nil)
        let result13 = attempts.closedBeforeResponse(connectionWasReused: true, replayable: false)
        #expect(result13 == nil)
        #expect(!attempts.retriedOnFreshConnection)
    }

    @Test("a failed fresh retry still fails over to the next target")
    func freshRetryFailsOver() {
        var attempts = BackendAttempts(targetCount: 2)
        _ = attempts.begin()
        #expect(
            attempts.closedBeforeResponse(connectionWasReused: true, replayable: true)
                == .connect(index: 0, fresh: true)
        )
        let result14 = attempts.connectFailed()
        #expect(result14 == .connect(index: 1, fresh: false))
    }

    @Test("a caller's own retry goes to the current target on a fresh connection")
    func callerRetry() {
        var attempts = BackendAttempts(targetCount: 2, failover: false)
        _ = attempts.begin()
        let result15 = attempts.retry()
        #expect(result15 == .connect(index: 0, fresh: true))
    }

    @Test("the backend head: the rewrite, then the added headers in order, then the body's length")
    func backendHead() throws {
        let configuration = try P8Configuration.parse(text: "", configDirectory: "/tmp", readFile: { _ in nil }).proxy
        let builder = BackendRequestBuilder(proxy: configuration, signatures: GripSignatureCache())
        let route = try #require(RouteTable.parse("* 127.0.0.1:80,over_http").table.routes.first)
        var request = BackendRequest(
            clientHead: HTTPRequestHead(
                version: .http1_1,
                method: .POST,
                uri: "/a",
                headers: ["Host": "example.com", "Connection": "keep-alive"]
            ),
            originForm: "/a",
            route: route,
            targets: route.targets,
            clientAddress: "192.0.2.7",
            clientIsTLS: false,
            trusted: false
        )
        request.addedHeaders = [("Grip-Last", "a; last-id=1"), ("Grip-Last", "b; last-id=2")]
        request.contentLength = 12
        let head = request.head(for: route.targets[0], builder: builder, now: 1_800_000_000)
        #expect(head.uri == "/a")
        #expect(head.headers["Grip-Last"] == ["a; last-id=1", "b; last-id=2"])
        #expect(head.headers["Content-Length"] == ["12"])
        #expect(head.headers["Connection"].isEmpty)
    }

    @Test("a target's connection key: host, port, TLS and the name its certificate is checked against")
    func backendKey() throws {
        let routes = RouteTable.parse(
            """
            a.example 127.0.0.1:443,ssl,insecure,host=api.example:8443
            b.example backend.example:80
            """
        ).table.routes
        let tls = try #require(BackendKey(target: routes[0].targets[0]))
        #expect(
            tls
                == BackendKey(
                    host: "127.0.0.1",
                    port: 443,
                    tls: true,
                    verifyCertificate: false,
                    serverName: "api.example"
                )
        )
        let plain = try #require(BackendKey(target: routes[1].targets[0]))
        #expect(plain.serverName == "backend.example")
        #expect(BackendKey.tlsServerName(connectHost: "10.0.0.1", target: routes[1].targets[0]) == nil)
    }
}
