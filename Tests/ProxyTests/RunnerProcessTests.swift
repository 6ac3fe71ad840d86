import Foundation
import P8TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The runner (`p8`) and the server process it supervises: restarts, the listen backlog while no server runs,
/// a clean stop, and back-off for a server that keeps dying.
@Suite("The runner and its server", .timeLimit(.minutes(1)))
struct RunnerProcessTests {
    @Test("a server killed with SIGKILL is replaced, and the new one serves")
    func killedServerIsReplaced() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:\(backend.port)"])
            let port = try await p8.readyPort()
            let first = try await RunnerStatusFile.readyServer(of: p8)
            kill(first.serverPid, SIGKILL)
            var second = first
            #expect(
                try await eventually {
                    second = try RunnerStatusFile.read(p8) ?? first
                    return second.serverPid != first.serverPid && second.ready
                }
            )
            #expect(second.restarts == 1)
            #expect(second.causes == ["killed by SIGKILL"])
            #expect(try await Self.get(port: port, body: "again") == "again")
            #expect(p8.stderrText.contains("server ended; starting a new one"))
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("a connection opened while no server runs waits in the backlog and is answered")
    func connectionWhileDownIsAnswered() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:\(backend.port)"])
            let port = try await p8.readyPort()
            let first = try await RunnerStatusFile.readyServer(of: p8)
            // A stopped runner cannot start a replacement: the server stays down until SIGCONT.
            p8.signal(SIGSTOP)
            kill(first.serverPid, SIGKILL)
            #expect(try await eventually { !RunnerStatusFile.isAlive(first.serverPid) })
            let client = try await RawHTTPConnection.connect(port: port)
            try await client.send("GET /plain?body=waited HTTP/1.1\r\nHost: a\r\n\r\n")
            p8.signal(SIGCONT)
            #expect(try await client.readResponse().text == "waited")
            await client.close()
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("SIGTERM to the runner stops the server, exits 0 and leaves no server process")
    func sigtermLeavesNoServer() async throws {
        let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:1"])
        _ = try await p8.readyPort()
        let server = try await RunnerStatusFile.readyServer(of: p8)
        p8.signal(SIGTERM)
        #expect(try await p8.waitForExit() == 0)
        #expect(!RunnerStatusFile.isAlive(server.serverPid))
        #expect(try RunnerStatusFile.read(p8) == nil)
    }

    @Test("SIGKILL to the runner takes the server with it")
    func sigkillTakesTheServer() async throws {
        let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:1"])
        _ = try await p8.readyPort()
        let server = try await RunnerStatusFile.readyServer(of: p8)
        p8.signal(SIGKILL)
        _ = try await p8.waitForExit()
        #expect(try await eventually { !RunnerStatusFile.isAlive(server.serverPid) })
    }

    @Test("a server that keeps dying is restarted with growing delays")
    func dyingServerBacksOff() async throws {
        let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:1"])
        _ = try await p8.readyPort()
        var killed: Set<pid_t> = []
        var status: RunnerStatusFile?
        // Each server is killed as soon as it appears, five times.
        #expect(
            try await eventually(timeout: .seconds(20)) {
                status = try RunnerStatusFile.read(p8)
                guard let current = status else { return false }
                if current.serverPid > 0 && !killed.contains(current.serverPid) && killed.count < 5 {
                    killed.insert(current.serverPid)
                    kill(current.serverPid, SIGKILL)
                }
                return current.restarts >= 5
            }
        )
        let times = status?.times ?? []
        try #require(times.count >= 5)
        // Restarted at once, then after 0.1 s, 0.2 s, 0.4 s: each gap at least the delay before it.
        #expect(times[2].timeIntervalSince(times[1]) >= 0.1)
        #expect(times[3].timeIntervalSince(times[2]) >= 0.2)
        #expect(times[4].timeIntervalSince(times[3]) >= 0.4)
        #expect(status?.causes.allSatisfy { $0 == "killed by SIGKILL" } == true)
        #expect(p8.stderrText.contains("p8.restart_in=0.4"))
        p8.signal(SIGTERM)
        #expect(try await p8.waitForExit() == 0)
    }

    @Test("a first server that cannot start ends the runner with its exit status")
    func serverThatNeverStartsEndsTheRunner() async throws {
        let temporary = try TemporaryDirectory(prefix: "p8")
        let directory = temporary.url
        // The database's directory is a regular file: the server exits at start-up.
        try "".write(to: directory.appendingPathComponent("file"), atomically: true, encoding: .utf8)
        let config = directory.appendingPathComponent("p-8.conf")
        try
            ("[global]\nrundir=run\n[runner]\nhttp_port=127.0.0.1:0\n[handler]\npush_in_http_port=0\n"
            + "push_in_spec=\npush_in_sub_specs=\ncommand_spec=\n[store]\ndatabase_file=file/p8.sqlite\n")
            .write(to: config, atomically: true, encoding: .utf8)
        let p8 = try P8Process.start(arguments: ["--config", config.path, "--route", "* 127.0.0.1:1"])
        #expect(try await p8.waitForExit() == 1)
        #expect(p8.stderrText.contains("cannot open the database"))
    }

    @Test("--no-supervisor runs the server alone: one process, no runner status file")
    func noSupervisorRunsTheServerAlone() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--no-supervisor", "--route", "* 127.0.0.1:\(backend.port)"])
            let port = try await p8.readyPort()
            #expect(try await Self.get(port: port, body: "alone") == "alone")
            #expect(try RunnerStatusFile.read(p8) == nil)
            #expect(!p8.stderrText.contains("server started"))
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    private static func get(port: Int, body: String) async throws -> String {
        let client = try await RawHTTPConnection.connect(port: port)
        try await client.send("GET /plain?body=\(body) HTTP/1.1\r\nHost: a\r\n\r\n")
        let text = try await client.readResponse().text
        await client.close()
        return text
    }
}

/// The runner's `p8-runner.json`, as `p8ctl status` reads it.
struct RunnerStatusFile {
    var serverPid: pid_t
    var ready: Bool
    var restarts: Int
    var causes: [String]
    var times: [Date]
    /// Restarts asked for (SIGUSR2, `p8ctl restart`) that completed.
    var handovers: Int

    static func read(_ p8: P8Process) throws -> RunnerStatusFile? {
        guard let directory = p8.directory else { return nil }
        return try self.read(at: directory.appendingPathComponent("run/p8-runner.json"))
    }

    static func read(at url: URL) throws -> RunnerStatusFile? {
        guard let data = FileManager.default.contents(atPath: url.path),
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            return nil
        }
        let causes = (object["restartCauses"] as? [[String: String]]) ?? []
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return RunnerStatusFile(
            serverPid: pid_t((object["serverPid"] as? Int) ?? 0),
            ready: object["serverReadyAt"] != nil,
            restarts: (object["restarts"] as? Int) ?? 0,
            causes: causes.compactMap { $0["cause"] },
            times: causes.compactMap { $0["at"].flatMap(formatter.date(from:)) },
            handovers: (object["handovers"] as? Int) ?? 0
        )
    }

    /// The status once a server is up and ready.
    static func readyServer(of p8: P8Process) async throws -> RunnerStatusFile {
        var status: RunnerStatusFile?
        _ = try await eventually {
            status = try self.read(p8)
            return status.map { $0.serverPid > 0 && $0.ready } ?? false
        }
        guard let status, status.serverPid > 0 else {
            throw P8ProcessError(description: "no server in the runner's status file; stderr: \(p8.stderrText)")
        }
        return status
    }

    /// Whether `pid` runs (a zombie awaiting its reaper counts as gone).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else {
            return false
        }
        return !stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
    }
}
