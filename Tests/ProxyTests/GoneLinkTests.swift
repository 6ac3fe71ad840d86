import Foundation
import P8TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `Grip-Link: <...>; rel=gone` (Pushpin 1.41): the backend hears, with a `POST` and an empty body, of every held
/// client that went away: one that disconnects, one a shutdown disconnects, and those a crashed server held.
@Suite struct GoneLinkTests {
    @Test func aStreamClientThatDisconnectsIsPostedToItsGoneLink() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await Self.holdStream(p8, channel: "gs", gone: "</gone?who=stream>; rel=gone")
            await client.close()
            let gone = try await Self.goneRequests(backend, who: "stream", count: 1)
            #expect(gone.map(\.method) == ["POST"])
            #expect(gone.first?.body == [])
            #expect(gone.first?.values("Host") == ["example.com"])
            // Signed as every request to the route's backend is.
            #expect(gone.first?.values("Grip-Sig").count == 1)
        }
    }

    @Test func aLongPollThatIsAnsweredOwesNoGoneCallbackButOneThatLeavesDoes() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let answered = try await Self.holdLongPoll(p8, channel: "ga", gone: "</gone?who=answered>; rel=gone")
            _ = try await publish(
                p8,
                #"{"items": [{"channel": "ga", "formats": {"http-response": {"body": "done\n"}}}]}"#
            )
            #expect(try await answered.readResponse().text == "done\n")
            await answered.close()
            // A client that leaves while held afterwards: once its callback arrived, the answered one's would have
            // (both are sent when the connection closes).
            let left = try await Self.holdLongPoll(p8, channel: "gl", gone: "</gone?who=left>; rel=gone")
            await left.close()
            _ = try await Self.goneRequests(backend, who: "left", count: 1)
            #expect(Self.gone(backend, who: "answered").isEmpty)
        }
    }

    @Test func aGoneLinkToAnotherHostIsPostedThere() async throws {
        let backend = try await TestBackend.start()
        let other = try await TestBackend.start()
        defer {
            Task {
                await backend.stop()
                await other.stop()
            }
        }
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            let client = try await Self.holdStream(
                p8,
                channel: "go",
                gone: "<http://127.0.0.1:\(other.port)/gone?who=elsewhere>; rel=gone"
            )
            await client.close()
            let gone = try await Self.goneRequests(other, who: "elsewhere", count: 1)
            #expect(gone.first?.values("Host") == ["127.0.0.1:\(other.port)"])
            #expect(Self.gone(backend, who: "elsewhere").isEmpty)
        }
    }

    @Test func aStreamThatAShutdownEndsIsPostedToItsGoneLink() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        var client: RawHTTPConnection?
        try await withRunningP8Server(routes: ["* 127.0.0.1:\(backend.port)"]) { p8 in
            client = try await Self.holdStream(p8, channel: "gd", gone: "</gone?who=shutdown>; rel=gone")
        }
        _ = try await Self.goneRequests(backend, who: "shutdown", count: 1)
        await client?.close()
    }

    @Test("the holds of a server killed with SIGKILL are posted to their gone links by the next one")
    func aCrashedServersHoldsArePostedByTheNextServer() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:\(backend.port)"])
            let ports = try await p8.readyPorts()
            let first = try await RunnerStatusFile.readyServer(of: p8)
            var clients: [RawHTTPConnection] = []
            for who in ["crash-1", "crash-2"] {
                let client = try await RawHTTPConnection.connect(port: ports.http)
                try await client.send(Self.streamRequest(channel: "gc", gone: "</gone?who=\(who)>; rel=gone"))
                _ = try await client.readHead()
                _ = try await client.readChunks(until: "open\n")
                clients.append(client)
            }
            // A commit after the holds started: their records, queued before it, are on disk with it.
            let publisher = try await RawHTTPConnection.connect(port: ports.publish)
            let json = streamItems("gc", ["one\n"])
            try await publisher.send(
                "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
            )
            #expect(try await publisher.readResponse().status == 200)
            for client in clients {
                _ = try await client.readChunks(until: "one\n")
            }
            #expect(Self.gone(backend, who: "crash-1").isEmpty)
            kill(first.serverPid, SIGKILL)
            for client in clients {
                try await client.waitForClose()
            }
            _ = try await Self.goneRequests(backend, who: "crash-1", count: 1)
            _ = try await Self.goneRequests(backend, who: "crash-2", count: 1)
            #expect(p8.stderrText.contains("gone callbacks owed by an earlier run sent"))
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    // MARK: - Helpers

    private static func streamRequest(channel: String, gone: String) -> String {
        let path = gripPath(
            [("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", channel), ("Grip-Link", gone)],
            body: "open\n"
        )
        return "GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n"
    }

    /// A client held as a stream on `channel`, once subscribed.
    private static func holdStream(_ p8: RunningP8, channel: String, gone: String) async throws -> RawHTTPConnection {
        let client = try await RawHTTPConnection.connect(port: p8.httpPort)
        try await client.send(Self.streamRequest(channel: channel, gone: gone))
        _ = try await client.readHead()
        _ = try await client.readChunks(until: "open\n")
        try await waitForSubscribers(p8, channel: channel)
        return client
    }

    /// A client held as a long-poll on `channel`, once subscribed.
    private static func holdLongPoll(_ p8: RunningP8, channel: String, gone: String) async throws -> RawHTTPConnection {
        let client = try await RawHTTPConnection.connect(port: p8.httpPort)
        let path = gripPath([("Grip-Hold", "response"), ("Grip-Channel", channel), ("Grip-Link", gone)], body: "")
        try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
        try await waitForSubscribers(p8, channel: channel)
        return client
    }

    private static func gone(_ backend: TestBackend, who: String) -> [EchoedRequest] {
        backend.requests.filter { $0.uri == "/gone?who=\(who)" }
    }

    /// Waits for `count` gone callbacks for `who`.
    private static func goneRequests(_ backend: TestBackend, who: String, count: Int) async throws -> [EchoedRequest] {
        var requests: [EchoedRequest] = []
        let arrived = try await eventually {
            requests = Self.gone(backend, who: who)
            return requests.count >= count
        }
        guard arrived else { throw HoldTestError("no gone callback for \(who)") }
        return requests
    }
}
