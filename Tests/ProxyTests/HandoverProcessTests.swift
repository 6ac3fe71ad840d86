import Foundation
import P8TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The restart without dropped connections (SIGUSR2 to the runner, `p8ctl restart`): a new server takes the held
/// connections over on the same TCP connections, with nothing lost or repeated; a restart reads the config again;
/// one to a config that no longer parses leaves the old server serving.
@Suite("Restarts that drop no connection", .timeLimit(.minutes(1)))
struct HandoverProcessTests {
    @Test(
        "SIGUSR2 hands long-polls, streams, WebSockets, idle and publishing connections over: they get the next items once"
    )
    func heldConnectionsSurviveARestart() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:\(backend.port),over_http"])
            let ports = try await p8.readyPorts()
            let first = try await RunnerStatusFile.readyServer(of: p8)
            let stream = try await RawHTTPConnection.connect(port: ports.http)
            try await stream.send(Self.request(Self.streamPath("hs")))
            #expect(try await stream.readHead().status == 200)
            _ = try await stream.readChunks(until: "open\n")
            let longPoll = try await RawHTTPConnection.connect(port: ports.http)
            try await longPoll.send(Self.request(Self.longPollPath("hl")))
            let idle = try await RawHTTPConnection.connect(port: ports.http)
            try await idle.send(Self.request("/plain?body=before"))
            #expect(try await idle.readResponse().text == "before")
            let socket = try await RawWebSocket.connect(port: ports.http, path: "/ws?channel=hw&echo")
            #expect(socket.response.status == 101)
            try await Self.waitForSubscribers(ports.publish, ["hs", "hl", "hw"])
            // A publisher that keeps its connection alive.
            let publisher = try await RawHTTPConnection.connect(port: ports.publish)
            try await Self.publish(on: publisher, Self.streamItem("hs", id: "s1", prev: nil, "one\n"))
            #expect(try await stream.readChunks(until: "one\n").body == Array("one\n".utf8))
            // The three holds' records, as `p8ctl held` shows them: the new server keeps them.
            let config = try #require(p8.configPath)
            let records = try await Self.heldRecords(config, count: 3)

            // The old server stopped: the restart stays under way until it continues.
            kill(first.serverPid, SIGSTOP)
            p8.signal(SIGUSR2)
            #expect(try await eventually { p8.stderrText.contains("new server started") })
            // A second request while the first restart is under way starts none.
            p8.signal(SIGUSR2)
            #expect(
                try await eventually { p8.stderrText.contains("restart requested while one is under way: ignored") }
            )
            // Published while the connections change hands: served by the old server before it hands over, or by
            // the new one once it listens.
            let publishing = Task {
                try await Self.publish(ports.publish, Self.streamItem("hs", id: "s2", prev: "s1", "two\n"))
            }
            kill(first.serverPid, SIGCONT)
            try await publishing.value
            let second = try await RunnerStatusFile.restarted(p8, from: first)
            #expect(second.handovers == 1)
            #expect(second.restarts == 0)
            #expect(try await eventually { !RunnerStatusFile.isAlive(first.serverPid) })
            // The publisher's connection went over too: the new server answers on it.
            try await Self.publish(on: publisher, Self.streamItem("hs", id: "s3", prev: "s2", "three\n"))
            let streamed = try await stream.readChunks(until: "three\n")
            #expect(String(decoding: streamed.body, as: UTF8.self) == "two\nthree\n")
            try await Self.publish(
                ports.publish,
                #"{"items": [{"channel": "hl", "formats": {"http-response": {"body": "released\n"}}}]}"#
            )
            #expect(try await longPoll.readResponse().text == "released\n")
            try await idle.send(Self.request("/plain?body=after"))
            #expect(try await idle.readResponse().text == "after")
            // The WebSocket's subscription and its backend side both go on: no second OPEN.
            try await Self.publish(
                ports.publish,
                #"{"items": [{"channel": "hw", "formats": {"ws-message": {"content": "pushed"}}}]}"#
            )
            #expect(try await socket.readMessage().text == "pushed")
            try await socket.send(text: "hello")
            #expect(try await socket.readMessage().text == "echo:hello")
            // The long-poll was answered (its record went); the stream's and the WebSocket's are the same records.
            let kept = try await Self.heldRecords(config, count: 2)
            #expect(kept.allSatisfy { records[$0.key] == $0.value })
            let opens = backend.requests.filter { $0.uri.hasPrefix("/ws") && $0.body.starts(with: Array("OPEN".utf8)) }
            #expect(opens.count == 1)
            let log = p8.stderrText
            // The kept publish connection, and maybe the one publishing during the restart, if it was accepted
            // before the old server stopped accepting.
            #expect(
                log.contains(
                    /handed over \(1 long-polls, 1 streams, 1 WebSockets, 1 idle, [12] publishing, 0 sent again\), 0 left to close/
                )
            )
            for client in [stream, longPoll, idle, socket.connection, publisher] {
                await client.close()
            }
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("a GET still waiting for its backend when the settling time ends is handed over and sent again")
    func requestInFlightIsSentAgain() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:\(backend.port)"])
            let ports = try await p8.readyPorts()
            let first = try await RunnerStatusFile.readyServer(of: p8)
            let path = "/firsthangs" + Self.longPollPath("hr").dropFirst("/plain".count)
            let client = try await RawHTTPConnection.connect(port: ports.http)
            try await client.send(Self.request(path))
            #expect(try await eventually { backend.requests.contains { $0.uri == path } })
            p8.signal(SIGUSR2)
            _ = try await RunnerStatusFile.restarted(p8, from: first)
            // The new server asked the backend again, and holds the answer on the same connection.
            #expect(try await eventually { backend.requests.count { $0.uri == path } == 2 })
            try await Self.waitForSubscribers(ports.publish, ["hr"])
            try await Self.publish(
                ports.publish,
                #"{"items": [{"channel": "hr", "formats": {"http-response": {"body": "released\n"}}}]}"#
            )
            #expect(try await client.readResponse().text == "released\n")
            #expect(p8.stderrText.contains("1 sent again), 0 left to close"))
            await client.close()
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("p8ctl restart reads p-8.conf again: a route it now names takes effect; held clients stay")
    func restartReadsTheConfigAgain() async throws {
        let before = try await TestBackend.start()
        let after = try await TestBackend.start()
        defer {
            Task {
                await before.stop()
                await after.stop()
            }
        }
        let directory = try TemporaryDirectory(prefix: "p8")
        let config = try Self.writeConfig(directory.url, routes: "* 127.0.0.1:\(before.port)")
        let p8 = try P8Process.start(arguments: ["--config", config.path])
        let ports = try await p8.readyPorts()
        let statusFile = directory.url.appendingPathComponent("run/p8-runner.json")
        let first = try await RunnerStatusFile.readyServer(at: statusFile, of: p8)
        let stream = try await RawHTTPConnection.connect(port: ports.http)
        try await stream.send(Self.request(Self.streamPath("rc")))
        _ = try await stream.readHead()
        _ = try await stream.readChunks(until: "open\n")
        // The config now names another routes file (the one the running server watches is unchanged).
        try "* 127.0.0.1:\(after.port)\n".write(
            to: directory.url.appendingPathComponent("routes-after"),
            atomically: true,
            encoding: .utf8
        )
        _ = try Self.writeConfig(directory.url, routes: nil, routesFile: "routes-after", http: ports.http)
        let restart = try await Self.p8ctl(["restart", "--config", config.path])
        #expect(restart.status == 0, "\(restart.output)")
        #expect(restart.output.hasPrefix("restarted: server pid"))
        let second = try await RunnerStatusFile.restarted(p8, at: statusFile, from: first)
        #expect(second.serverPid != first.serverPid)
        let plain = try await RawHTTPConnection.connect(port: ports.http)
        try await plain.send(Self.request("/plain?body=routed"))
        #expect(try await plain.readResponse().text == "routed")
        #expect(after.requests.contains { $0.uri == "/plain?body=routed" })
        #expect(!before.requests.contains { $0.uri == "/plain?body=routed" })
        try await Self.publish(ports.publish, Self.streamItem("rc", id: nil, prev: nil, "still here\n"))
        #expect(try await stream.readChunks(until: "still here\n").ended == false)
        await plain.close()
        await stream.close()
        p8.signal(SIGTERM)
        #expect(try await p8.waitForExit() == 0)
    }

    @Test("a restart to a config that no longer parses fails, says why, and the old server keeps serving")
    func restartToABrokenConfigKeepsTheOldServer() async throws {
        try await withTestBackend { backend in
            let directory = try TemporaryDirectory(prefix: "p8")
            let config = try Self.writeConfig(directory.url, routes: "* 127.0.0.1:\(backend.port)")
            let p8 = try P8Process.start(arguments: ["--config", config.path])
            let ports = try await p8.readyPorts()
            let statusFile = directory.url.appendingPathComponent("run/p8-runner.json")
            let first = try await RunnerStatusFile.readyServer(at: statusFile, of: p8)
            let stream = try await RawHTTPConnection.connect(port: ports.http)
            try await stream.send(Self.request(Self.streamPath("bc")))
            _ = try await stream.readHead()
            _ = try await stream.readChunks(until: "open\n")
            try "[runner]\nhttp_port=not a port\n".write(to: config, atomically: true, encoding: .utf8)
            let restart = try await Self.p8ctl([
                "restart", "--rundir", directory.url.appendingPathComponent("run").path,
            ])
            #expect(restart.status == 1)
            #expect(restart.output.contains("restart failed: the new server did not start"), "\(restart.output)")
            let status = try #require(try RunnerStatusFile.read(at: statusFile))
            #expect(status.serverPid == first.serverPid)
            #expect(status.handovers == 0)
            try await Self.publish(ports.publish, Self.streamItem("bc", id: nil, prev: nil, "served\n"))
            #expect(try await stream.readChunks(until: "served\n").ended == false)
            #expect(
                p8.stderrText.contains("restart failed: the new server did not start; the running server keeps serving")
            )
            await stream.close()
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    // MARK: - Helpers

    static func request(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n"
    }

    private static func streamPath(_ channel: String) -> String {
        gripPath([("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", channel)], body: "open\n")
    }

    static func longPollPath(_ channel: String) -> String {
        gripPath([("Grip-Hold", "response"), ("Grip-Channel", channel), ("Grip-Timeout", "60")], body: "timeout\n")
    }

    private static func streamItem(_ channel: String, id: String?, prev: String?, _ content: String) -> String {
        let ids = (id.map { #""id": "\#($0)", "# } ?? "") + (prev.map { #""prev-id": "\#($0)", "# } ?? "")
        return
            #"{"items": [{"channel": "\#(channel)", \#(ids)"formats": {"http-stream": {"content": \#(jsonString(content))}}}]}"#
    }

    private static func publish(_ port: Int, _ json: String) async throws {
        let connection = try await RawHTTPConnection.connect(port: port)
        try await self.publish(on: connection, json, keepAlive: false)
        await connection.close()
    }

    private static func publish(on connection: RawHTTPConnection, _ json: String, keepAlive: Bool = true) async throws {
        try await connection.send(
            "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(json.utf8.count)\r\n\(keepAlive ? "" : "Connection: close\r\n")\r\n\(json)"
        )
        let response = try await connection.readResponse()
        guard response.status == 200 else {
            throw HoldTestError("publish answered \(response.status): \(response.text)")
        }
    }

    /// The held-request records (`p8ctl held --json`): each one's start time by id, once there are `count`.
    private static func heldRecords(_ config: String, count: Int) async throws -> [String: String] {
        var records: [String: String] = [:]
        let listed = try await eventually {
            let held = try await Self.p8ctl(["held", "--config", config, "--json"])
            guard held.status == 0, let holds = try? JSONSerialization.jsonObject(with: Data(held.output.utf8)) else {
                return false
            }
            records = [:]
            for hold in holds as? [[String: Any]] ?? [] {
                records[hold["id"] as? String ?? ""] = hold["startedAt"] as? String
            }
            return records.count == count
        }
        guard listed else { throw HoldTestError("not \(count) held-request records: \(records)") }
        return records
    }

    /// Waits until each channel has a subscriber (the publish API's stats).
    static func waitForSubscribers(_ port: Int, _ channels: [String]) async throws {
        let subscribed = try await eventually {
            let connection = try await RawHTTPConnection.connect(port: port)
            try await connection.send("GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let text = try await connection.readResponse().text
            await connection.close()
            return channels.allSatisfy { text.contains("\"\($0)\"") }
        }
        guard subscribed else { throw HoldTestError("no subscribers on \(channels)") }
    }

    /// Writes `p-8.conf` (and `routes`, when given) into `directory`; listens on `http` (else port 0).
    @discardableResult
    private static func writeConfig(
        _ directory: URL,
        routes: String?,
        routesFile: String = "routes",
        http: Int = 0
    ) throws -> URL {
        if let routes {
            try (routes + "\n").write(to: directory.appendingPathComponent("routes"), atomically: true, encoding: .utf8)
        }
        let config = directory.appendingPathComponent("p-8.conf")
        try
            ("[global]\nrundir=run\n[runner]\nhttp_port=127.0.0.1:\(http)\n[proxy]\nroutesfile=\(routesFile)\n"
            + "[handler]\npush_in_http_port=0\npush_in_spec=\npush_in_sub_specs=\ncommand_spec=\n")
            .write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    /// Runs `p8ctl` and returns its exit status and what it printed (stdout, then stderr).
    private static func p8ctl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        guard let executable = ChildProcess.product("p8ctl") else { throw HoldTestError("p8ctl not built") }
        let process = try ChildProcess.spawn(executable, arguments: arguments)
        let status = try await process.waitForExit(timeout: .seconds(30))
        let output = process.stdout.readDataToEndOfFile() + process.stderr.readDataToEndOfFile()
        return (status, String(decoding: output, as: UTF8.self))
    }
}

extension RunnerStatusFile {
    /// The status once a restart asked for has completed (a server other than `first`'s is ready).
    static func restarted(
        _ p8: P8Process,
        at url: URL? = nil,
        from first: RunnerStatusFile
    ) async throws -> RunnerStatusFile {
        var status: RunnerStatusFile?
        let done = try await eventually(timeout: .seconds(20)) {
            status = try url.map { try self.read(at: $0) } ?? self.read(p8)
            return status.map { $0.handovers > first.handovers && $0.ready } ?? false
        }
        guard done, let status else {
            throw P8ProcessError(description: "no restart completed; stderr: \(p8.stderrText)")
        }
        return status
    }
}

extension RunnerStatusFile {
    /// The status at `url` (a runner started with its own `--config`) once a server is up and ready.
    static func readyServer(at url: URL, of p8: P8Process) async throws -> RunnerStatusFile {
        var status: RunnerStatusFile?
        _ = try await eventually {
            status = try self.read(at: url)
            return status.map { $0.serverPid > 0 && $0.ready } ?? false
        }
        guard let status, status.serverPid > 0 else {
            throw P8ProcessError(description: "no server in \(url.path); stderr: \(p8.stderrText)")
        }
        return status
    }
}
