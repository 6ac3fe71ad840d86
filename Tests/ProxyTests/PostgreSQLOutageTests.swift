import Foundation
import GRIP
import P8TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `p8` executable on PostgreSQL while its server goes away and comes back: publishes are refused with 503 (never
/// 200 for an item not committed), held clients stay held, and p8 recovers by itself once the server is back.
///
/// The test stops and starts a PostgreSQL cluster of its own (scripts/postgresql-cluster.sh, as CI's), never the
/// run's shared one; it runs where the run has PostgreSQL (`P8_TEST_POSTGRESQL_URL` set, as scripts/test.sh does).
@Suite(
    "p8 on a PostgreSQL server that goes away",
    .enabled(if: ProcessInfo.processInfo.environment["P8_TEST_POSTGRESQL_URL"] != nil),
    .timeLimit(.minutes(2))
)
struct PostgreSQLOutageTests {
    @Test("publishes answer 503 while the server is down, a held long-poll stays held and gets the next item")
    func outageAndRecovery() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        let temporary = try TemporaryDirectory(prefix: "p8-outage")
        let cluster = try PrivateCluster(directory: temporary.path("cluster"))
        let url = try await cluster.start()
        defer { Task { try? await cluster.stop() } }
        let directory = temporary.url
        try "* 127.0.0.1:\(backend.port)\n".write(
            to: directory.appendingPathComponent("routes"),
            atomically: true,
            encoding: .utf8
        )
        try """
        [global]
        rundir=run
        [runner]
        http_port=127.0.0.1:0
        [proxy]
        routesfile=routes
        [handler]
        push_in_http_port=0
        push_in_spec=
        push_in_sub_specs=
        command_spec=
        [store]
        backend=postgresql
        postgresql_url=\(url)

        """.write(to: directory.appendingPathComponent("p-8.conf"), atomically: true, encoding: .utf8)
        let p8 = try P8Process.start(arguments: ["--config", directory.appendingPathComponent("p-8.conf").path])
        let ports = try await p8.readyPorts()
        #expect(try await Self.publish(port: ports.publish, id: "before").status == 200)

        let client = try await RawHTTPConnection.connect(port: ports.http)
        let path = gripPath([("Grip-Hold", "response"), ("Grip-Channel", "out"), ("Grip-Timeout", "120")], body: "t\n")
        try await client.send("GET \(path) HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(try await eventually { try await Self.subscribers(port: ports.publish)["out"] == 1 })

        try await cluster.stop()
        // Never 200 while the server is down: the first publishes may wait for the commit's deadline, then every
        // one is refused at once.
        let refused = try await Self.publish(port: ports.publish, id: "during")
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") == "1")
        // Once the loss is known, a publish does not wait for the commit's 10 s deadline (the bound leaves room for
        // a loaded machine, and for a connection attempt, 5 s, still in progress).
        let started = ContinuousClock.now
        #expect(try await Self.publish(port: ports.publish, id: "during").status == 503)
        #expect(ContinuousClock.now - started < .seconds(8))
        #expect(try await Self.subscribers(port: ports.publish)["out"] == 1)
        #expect(p8.stderrText.contains("PostgreSQL server lost"))

        _ = try await cluster.start()
        var status = 0
        let recovered = try await eventually(timeout: .seconds(60)) {
            status = try await Self.publish(port: ports.publish, id: "after").status
            return status == 200
        }
        #expect(recovered, "last publish answered \(status)")
        let response = try await client.readResponse(timeout: .seconds(15))
        #expect(response.status == 200)
        #expect(response.text == "after\n")
        #expect(p8.stderrText.contains("PostgreSQL server reachable again"))
        p8.signal(SIGTERM)
        #expect(try await p8.waitForExit() == 0)
    }

    /// Publishes one item whose body is its id to channel `out`.
    static func publish(port: Int, id: String) async throws -> RawResponse {
        let json =
            #"{"items": [{"channel": "out", "id": "\#(id)", "formats": {"http-response": {"body": "\#(id)\n"}}}]}"#
        let connection = try await RawHTTPConnection.connect(port: port)
        try await connection.send(
            "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
        )
        let response = try await connection.readResponse(timeout: .seconds(30))
        await connection.close()
        return response
    }

    static func subscribers(port: Int) async throws -> [String: Int] {
        let connection = try await RawHTTPConnection.connect(port: port)
        try await connection.send("GET /stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try await connection.readResponse()
        await connection.close()
        guard case .object(let root)? = JSONValue.parse(response.body), case .object(let channels)? = root["channels"]
        else {
            return [:]
        }
        return channels.compactMapValues { value -> Int? in
            guard case .object(let members) = value, case .int(let count)? = members["subscribers"] else { return nil }
            return count
        }
    }
}

/// A PostgreSQL cluster of one test, started and stopped with scripts/postgresql-cluster.sh on a free port.
struct PrivateCluster: Sendable {
    let directory: String
    let port: Int

    init(directory: String) throws {
        self.directory = directory
        self.port = try LoopbackPort.free()
    }

    /// Starts the cluster (creating it the first time) and returns its URL.
    func start() async throws -> String {
        try await Self.script(["start", self.directory, String(self.port)], timeout: .seconds(90))
        return "postgresql://p8@127.0.0.1:\(self.port)/postgres"
    }

    func stop() async throws {
        try await Self.script(["stop", self.directory], timeout: .seconds(60))
    }

    /// Runs the script as a child whose descriptors are this process's 0-2 only (a pipe inherited by the server it
    /// starts would never reach its end), and waits for it without blocking a thread.
    private static func script(_ arguments: [String], timeout: Duration) async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let child = try ChildProcess.spawn(
            root.appendingPathComponent("scripts/postgresql-cluster.sh"),
            arguments: arguments
        )
        guard try await child.waitForExit(timeout: timeout) == 0 else {
            throw HoldTestError("postgresql-cluster.sh \(arguments.joined(separator: " ")) failed")
        }
    }
}
