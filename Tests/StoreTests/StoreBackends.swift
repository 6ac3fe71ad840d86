import Foundation
import GRIP
import Logging
import P8TestSupport
import PostgresNIO
import Store

/// The backends the shared Store suite runs against.
enum StoreBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgresql

    var description: String { self.rawValue }
}

/// A fresh database of one backend for one test: a file in a temporary directory, or a new database on the test
/// PostgreSQL server. ``open(_:)`` opens it (again) as the server would.
final class TestDatabase: Sendable {
    let backend: StoreBackend
    private let sqlitePath: String?
    private let postgresqlURL: PostgreSQLURL?

    init(_ backend: StoreBackend) async throws {
        self.backend = backend
        switch backend {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "p8-store-tests-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            self.sqlitePath = directory.appendingPathComponent("p8.sqlite").path
            self.postgresqlURL = nil
        case .postgresql:
            self.sqlitePath = nil
            self.postgresqlURL = try await TestPostgreSQLServer.shared.createDatabase()
        }
    }

    deinit {
        if let path = self.sqlitePath {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        }
    }

    /// Opens the store with this `[store]` configuration (its `database_file` is replaced by the test's database).
    func open(
        _ configuration: StoreConfiguration = StoreConfiguration(databaseFile: "")
    ) async throws
        -> any ChannelLogStore
    {
        var configuration = configuration
        switch self.backend {
        case .sqlite:
            configuration.databaseFile = self.sqlitePath ?? ""
            return try await ChannelStore.open(configuration: configuration, logger: testLogger)
        case .postgresql:
            guard let url = self.postgresqlURL else { throw CancellationError() }
            return try await PostgreSQLStore.open(url: url, configuration: configuration, logger: testLogger)
        }
    }

    var url: PostgreSQLURL? { self.postgresqlURL }
}

/// The PostgreSQL server of the test run: `P8_TEST_POSTGRESQL_URL` (scripts/test.sh starts a private cluster and
/// sets it), or else a cluster this process starts with scripts/postgresql-cluster.sh in a temporary directory (left
/// running for later runs of the same user; `scripts/postgresql-cluster.sh stop DIR` stops it).
actor TestPostgreSQLServer {
    static let shared = TestPostgreSQLServer()
    private var base: PostgreSQLURL?

    func createDatabase() async throws -> PostgreSQLURL {
        let base = try await self.baseURL()
        let name = "p8_test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let connection = try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: base.host,
                port: base.port,
                username: base.user,
                password: base.password,
                database: base.database,
                tls: .disable
            ),
            id: 1,
            logger: testLogger
        )
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: testLogger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        var url = base
        url.database = name
        return url
    }

    private func baseURL() async throws -> PostgreSQLURL {
        if let base = self.base {
            return base
        }
        let environment = ProcessInfo.processInfo.environment
        let string: String
        if let configured = environment["P8_TEST_POSTGRESQL_URL"], !configured.isEmpty {
            string = configured
        } else {
            string = try await Self.startCluster()
        }
        let url = try PostgreSQLURL(string)
        self.base = url
        return url
    }

    private static func startCluster() async throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("p8-test-postgresql-\(getuid())")
        // An already running cluster of an earlier run answers pg_ctl start with an error: then it is reused.
        // (ChildProcess, not Foundation.Process, whose waitUntilExit here once never returned for an exited child.)
        let process = try ChildProcess.spawn(
            root.appendingPathComponent("scripts/postgresql-cluster.sh"),
            arguments: ["start", directory.appendingPathComponent("cluster").path, "25499"]
        )
        _ = try await process.waitForExit(timeout: .seconds(120))
        let text = String(decoding: process.stdout.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "postgresql://p8@127.0.0.1:25499/postgres" : text
    }
}
