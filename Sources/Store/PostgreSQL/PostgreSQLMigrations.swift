import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL schema migrations: one per `migrations/postgresql/NNNN_name.sql`, in file-name order, each applied
/// once in its own transaction and recorded in `p8_migration`, under an advisory lock so that nodes starting together
/// migrate one at a time.
enum PostgreSQLMigrations {
    static let lockKey: Int64 = 0x5038_0000

    /// The migration files in the order they apply, as (identifier, SQL).
    static func files() throws -> [(identifier: String, sql: String)] {
        guard let directory = Bundle.module.url(forResource: "PostgreSQLSchema", withExtension: nil) else {
            throw StoreError(
                code: .missingMigrations,
                path: Bundle.module.bundlePath,
                message: "no PostgreSQL migration folder in the Store bundle"
            )
        }
        let urls = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try urls.map { url in
            (
                identifier: url.deletingPathExtension().lastPathComponent,
                sql: try String(contentsOf: url, encoding: .utf8)
            )
        }
    }

    static func migrate(_ client: PostgresClient, url: PostgreSQLURL, logger: Logger) async throws {
        let files = try self.files()
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
            do {
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS p8_migration (identifier TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                    logger: logger
                )
                let applied = try await Self.applied(
                    connection,
                    known: files.map(\.identifier),
                    url: url,
                    logger: logger
                )
                for file in files where !applied.contains(file.identifier) {
                    try await connection.withTransaction(logger: logger) { connection in
                        for statement in Self.statements(file.sql) {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.query(
                            "INSERT INTO p8_migration (identifier) VALUES (\(file.identifier))",
                            logger: logger
                        )
                    }
                    logger.info("PostgreSQL migration applied", metadata: ["p8.store.migration": "\(file.identifier)"])
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
        }
    }

    /// Checks, without changing anything, that the database has exactly this build's migrations (what `p8ctl`
    /// needs: it never creates or migrates a database).
    ///
    /// - Throws: ``StoreError/Code/notAP8Database`` when no P-8 schema is there, ``StoreError/Code/newerDatabase``,
    ///   or ``StoreError/Code/outdatedDatabase`` when the server has not migrated it yet.
    static func check(_ client: PostgresClient, url: PostgreSQLURL, logger: Logger) async throws {
        let files = try self.files().map(\.identifier)
        var exists = false
        for try await found in try await client.query(
            "SELECT to_regclass('p8_migration') IS NOT NULL",
            logger: logger
        ).decode(Bool.self) {
            exists = found
        }
        guard exists else {
            throw StoreError(
                code: .notAP8Database,
                path: url.description,
                message: "no P-8 schema in this database (p8 creates it when it first starts with it)"
            )
        }
        let applied = try await client.withConnection { connection in
            try await Self.applied(connection, known: files, url: url, logger: logger)
        }
        let missing = Set(files).subtracting(applied)
        if !missing.isEmpty {
            throw StoreError(
                code: .outdatedDatabase,
                path: url.description,
                message: "the database needs migrations \(missing.sorted().joined(separator: ", ")) (p8 applies "
                    + "them when it starts)"
            )
        }
    }

    /// The migrations the database records as applied.
    ///
    /// - Throws: ``StoreError/Code/newerDatabase`` when some are not among `known` (this build's).
    private static func applied(
        _ connection: PostgresConnection,
        known: [String],
        url: PostgreSQLURL,
        logger: Logger
    ) async throws -> Set<String> {
        var applied = Set<String>()
        for try await identifier in try await connection.query(
            "SELECT identifier FROM p8_migration",
            logger: logger
        ).decode(String.self) {
            applied.insert(identifier)
        }
        let unknown = applied.subtracting(known)
        if !unknown.isEmpty {
            throw StoreError(
                code: .newerDatabase,
                path: url.description,
                message: "the database was migrated by a newer P-8 (migrations "
                    + "\(unknown.sorted().joined(separator: ", ")) are unknown to this build); upgrade P-8"
            )
        }
        return applied
    }

    /// A file's statements: its text without `--` comment lines, split where a line ends with `;` (the convention
    /// of our migration files: no statement has a line ending in `;` inside it).
    static func statements(_ sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("--") || trimmed.isEmpty {
                continue
            }
            current += line + "\n"
            if trimmed.hasSuffix(";") {
                statements.append(current)
                current = ""
            }
        }
        if !current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            statements.append(current)
        }
        return statements
    }
}
