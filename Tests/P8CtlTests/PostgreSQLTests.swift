import Foundation
import GRIP
import P8TestSupport
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `p8ctl` against the PostgreSQL database that several nodes share: from `--db postgresql://...` or the config's
/// `[store]`, the same commands as on SQLite, a clear error when the server is down, and the moves between the two
/// backends (`backup` to an SQLite file, `replay --publish` either way). Runs against the run's PostgreSQL server
/// (`P8_TEST_POSTGRESQL_URL`, as scripts/test.sh sets it), each test in a database of its own.
@Suite(
    "p8ctl on PostgreSQL",
    .enabled(if: PostgreSQLFixture.serverURL != nil),
    .timeLimit(.minutes(1))
)
struct PostgreSQLTests {
    @Test("channels, history, held, replay and export read the shared database, from --db or the config")
    func inspection() async throws {
        let fixture = try await PostgreSQLFixture.make()
        defer { fixture.store.close() }
        try await fixture.publishNews()
        try await fixture.store.recordHolds(upserts: [
            HoldRecord(
                id: "h1",
                instance: "node-a:run",
                mode: .stream,
                route: "api",
                clientAddress: "192.0.2.1:4000",
                channels: [HoldRecord.Channel(name: "news", lastId: "n3", lastSequence: 3)]
            )
        ])
        let db = ["--db", fixture.url]

        let channels = try await ctl(["channels", "--json"] + db)
        #expect(channels.status == 0, "\(channels)")
        let rows = try #require(try channels.json() as? [[String: Any]])
        #expect(rows.map { $0["name"] as? String } == ["news", "other"])
        #expect(rows.first?["items"] as? Int == 5)
        #expect(rows.first?["lastSequence"] as? Int == 5)

        // From the config's [store] backend=postgresql, as p8 reads it.
        let config = fixture.directory.path("p-8.conf")
        try "[store]\nbackend=postgresql\npostgresql_url=\(fixture.url)\n".write(
            toFile: config,
            atomically: true,
            encoding: .utf8
        )
        let fromConfig = try await ctl(["channels", "--config", config])
        #expect(fromConfig.status == 0, "\(fromConfig)")
        #expect(fromConfig.stdoutLines.count == 3)

        let history = try await ctl(["history", "news", "--after", "n2", "--content", "--json"] + db)
        #expect(history.status == 0, "\(history)")
        let document = try #require(try history.json() as? [String: Any])
        #expect(document["epoch"] as? String == fixture.store.epoch)
        let items = try #require(document["items"] as? [[String: Any]])
        #expect(items.map { $0["id"] as? String } == ["n3", "n4", "n5"])
        #expect(items.first?["meta"] as? [String: String] == ["sender": "alice"])
        #expect(try await ctl(["history", "news", "--after", "nope"] + db).status == 4)
        #expect(try await ctl(["history", "missing"] + db).status == 2)

        let held = try await ctl(["held", "--json"] + db)
        #expect(held.status == 0, "\(held)")
        let holds = try #require(try held.json() as? [[String: Any]])
        #expect(holds.map { $0["id"] as? String } == ["h1"])
        let heldChannels = try #require(holds.first?["channels"] as? [[String: Any]])
        #expect(heldChannels.first?["behind"] as? Int == 2)

        let replay = try await ctl(["replay", "news", "--after", "n3", "--json"] + db)
        #expect(replay.status == 0, "\(replay)")
        #expect(try replay.jsonLines().map { $0["id"] as? String } == ["n4", "n5"])

        let export = try await ctl(["export"] + db)
        #expect(export.status == 0, "\(export)")
        #expect(
            try export.jsonLines().map { $0["channel"] as? String } == Array(repeating: "news", count: 5) + ["other"]
        )
    }

    @Test("trim removes the oldest items; tail follows items committed by any node")
    func trimAndTail() async throws {
        let fixture = try await PostgreSQLFixture.make()
        defer { fixture.store.close() }
        try await fixture.publishNews()
        let db = ["--db", fixture.url]
        let trim = try await ctl(["trim", "news", "--keep", "2", "--json"] + db)
        #expect(trim.status == 0, "\(trim)")
        #expect((try trim.json() as? [String: Any])?["removedItems"] as? Int == 3)
        let history = try await ctl(["history", "news", "--after-seq", "1"] + db)
        #expect(history.status == 3, "\(history)")

        let tail = try CtlProcess.start(["tail", "news", "--lines", "1", "--json"] + db)
        let first = try await tail.readLines(atLeast: 1)
        #expect(first.first?.contains(#""id":"n5""#) == true, "\(first)")
        // Another node (here the test's own store) commits: tail shows it.
        _ = try await fixture.store.append([
            NewItem(channel: "news", id: "n6", prevId: "n5", formats: Data(#"{"http-stream":{"content":"6\n"}}"#.utf8))
        ])
        let lines = try await tail.readLines(atLeast: 2)
        #expect(lines.last?.contains(#""id":"n6""#) == true, "\(lines)")
        tail.signal(SIGTERM)
        #expect(try await tail.waitForExit() == 0)
    }

    @Test("a server that is down is one error line and status 75, for every command that reads the database")
    func serverDown() async throws {
        let nothing = try LoopbackPort()
        let closed = "postgresql://p8@127.0.0.1:\(nothing.port)/p8"
        for arguments in [["channels"], ["history", "news"], ["held"], ["export"], ["trim", "--all", "--keep", "1"]] {
            let result = try await ctl(arguments + ["--db", closed])
            #expect(result.status == 75, "\(arguments): \(result)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result)")
            #expect(result.stderr.contains("cannot reach the database"), "\(result)")
        }
        // A database without P-8's schema is refused, never migrated by p8ctl.
        let empty = try await ctl(["channels", "--db", try await PostgreSQLFixture.createDatabase()])
        #expect(empty.status == 65, "\(empty)")
        #expect(empty.stderr.contains("no P-8 schema"), "\(empty)")
        withExtendedLifetime(nothing) {}
    }

    @Test("backup copies PostgreSQL to an SQLite file that p8 serves: same items, sequences, ids and cursors")
    func backupToSQLite() async throws {
        let fixture = try await PostgreSQLFixture.make()
        defer { fixture.store.close() }
        try await fixture.publishNews()
        _ = try await fixture.store.trim(channel: "news", rule: .keepNewest(4))
        let copy = fixture.directory.path("copy.sqlite")
        let backup = try await ctl(["backup", copy, "--db", fixture.url, "--json"])
        #expect(backup.status == 0, "\(backup)")
        let summary = try #require(try backup.json() as? [String: Any])
        #expect(summary["channels"] as? Int == 2)
        #expect(summary["items"] as? Int == 5)
        #expect(summary["epoch"] as? String != fixture.store.epoch)
        #expect(try await ctl(["backup", copy, "--db", fixture.url]).status == 73)

        let source = try await ctl(["export", "--db", fixture.url])
        let copied = try await ctl(["export", "--db", copy])
        #expect(copied.status == 0, "\(copied)")
        func fields(_ result: CtlResult) throws -> [String] {
            try result.jsonLines().map { line in
                "\(line["channel"] ?? "") \(line["sequence"] ?? "") \(line["id"] ?? "") \(line["prevId"] ?? "-") "
                    + "\(line["size"] ?? "") \(line["publishedAt"] ?? "") \(line["meta"] ?? "-")"
            }
        }
        #expect(try fields(copied) == fields(source))
        // The item the store assigned an id to resolves on the copy; the trimmed one is older than retained.
        let assigned = try #require(try source.jsonLines().last?["id"] as? String)
        #expect(try await ctl(["history", "other", "--after", assigned, "--db", copy]).stdout == "no items\n")
        #expect(try await ctl(["history", "news", "--after-seq", "0", "--db", copy]).status == 3)
    }

    @Test("replay --publish moves a channel from PostgreSQL to a p8 on SQLite, and from SQLite to a p8 on PostgreSQL")
    func replayBetweenBackends() async throws {
        let fixture = try await PostgreSQLFixture.make()
        defer { fixture.store.close() }
        try await fixture.publishNews()
        let sqlite = try await Fixture.make()
        try await withP8(store: "database_file=\(sqlite.path)\n", in: sqlite.directory) { url in
            let replayed = try await ctl([
                "replay", "news", "--after", "n1", "--db", fixture.url, "--publish", "--url", url,
            ])
            #expect(replayed.status == 0, "\(replayed)")
        }
        let onSQLite = try await sqlite.store.read(channel: "news", after: .oldestRetained, limit: 100)
        #expect(onSQLite.items?.map(\.id) == ["n2", "n3", "n4", "n5"])
        #expect(onSQLite.items?.map { $0.meta != nil } == [false, true, false, false])

        let target = try await PostgreSQLFixture.make()
        defer { target.store.close() }
        try await sqlite.publish("back", count: 3, idPrefix: "b")
        let directory = try TemporaryDirectory()
        try await withP8(store: "backend=postgresql\npostgresql_url=\(target.url)\n", in: directory) { url in
            let replayed = try await ctl([
                "replay", "back", "--from-oldest", "--db", sqlite.path, "--publish", "--url", url,
            ])
            #expect(replayed.status == 0, "\(replayed)")
        }
        let onPostgreSQL = try await target.store.read(channel: "back", after: .oldestRetained, limit: 100)
        #expect(onPostgreSQL.items?.map(\.id) == ["b1", "b2", "b3"])
        #expect(onPostgreSQL.items?.map(\.prevId) == [nil, "b1", "b2"])
    }
}

/// A database of its own on the run's PostgreSQL server, and a store open on it as a p8 node has it.
struct PostgreSQLFixture {
    let directory: TemporaryDirectory
    let url: String
    let store: PostgreSQLStore

    static var serverURL: String? {
        ProcessInfo.processInfo.environment["P8_TEST_POSTGRESQL_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Creates a database (with psql) and opens a store on it, which migrates it.
    static func make() async throws -> PostgreSQLFixture {
        let url = try await Self.createDatabase()
        let store = try await PostgreSQLStore.open(
            url: try PostgreSQLURL(url),
            configuration: StoreConfiguration(databaseFile: ""),
            logger: testLogger,
            follows: false
        )
        return PostgreSQLFixture(directory: try TemporaryDirectory(), url: url, store: store)
    }

    /// Creates an empty database on the run's server and returns its URL.
    static func createDatabase() async throws -> String {
        guard let server = Self.serverURL, let base = server.range(of: "/", options: .backwards) else {
            throw CtlTestError(description: "P8_TEST_POSTGRESQL_URL is not set")
        }
        let name = "p8ctl_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        let psql = try ChildProcess.spawn(
            URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["psql", server, "-qc", "CREATE DATABASE \(name)"]
        )
        guard try await psql.waitForExit() == 0 else {
            throw CtlTestError(description: "psql could not create database \(name)")
        }
        return String(server[..<base.lowerBound]) + "/" + name
    }

    /// `news`: n1...n5 (n2 with meta), then one item of `other` with an id the store assigns.
    func publishNews() async throws {
        let items = (1...5).map { index in
            NewItem(
                channel: "news",
                id: "n\(index)",
                prevId: index > 1 ? "n\(index - 1)" : nil,
                formats: Data(#"{"http-stream":{"content":"item \#(index)\n"}}"#.utf8),
                meta: index == 3 ? Data(#"{"sender":"alice"}"#.utf8) : nil,
                publishedAt: fixtureTime.addingTimeInterval(Double(index))
            )
        }
        _ = try await self.store.append(items)
        _ = try await self.store.append([
            NewItem(channel: "other", formats: Data(#"{"http-stream":{"content":"o\n"}}"#.utf8))
        ])
    }
}

/// Runs a p8 whose `[store]` section is `store`, in `directory`, and gives `body` its publish API's URL.
private func withP8(store: String, in directory: TemporaryDirectory, _ body: (String) async throws -> Void) async throws
{
    try await withP8Process(writingConfig: directory.path("p8-server.conf"), store: store, body)
}
