import ArgumentParser
import Foundation
import GRIP
import Logging
import Runner
import Store

/// The options every `p8ctl` command takes: where the database is (SQLite or PostgreSQL), and JSON output.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The config file whose [store] names the database (database_file, or backend=postgresql and "
                + "postgresql_url; default: ./p-8.conf, else config/p-8.conf.example, as p8 finds it).",
            valueName: "file"
        ),
        completion: .file()
    )
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The database itself (wins over --config): an SQLite file, or a postgresql://user@host:port/db URL "
                + "(password from {env:NAME} in the URL or P8_POSTGRESQL_PASSWORD).",
            valueName: "file|url"
        ),
        completion: .file()
    )
    var db: String?

    @Flag(name: .long, help: "Print JSON for scripts (NDJSON, one object a line, for streams); times in RFC 3339.")
    var json = false

    /// Where the database is: an SQLite file or a PostgreSQL database.
    enum Database {
        case file(String)
        case postgresql(PostgreSQLURL)
    }

    /// The database: `--db`, else the config file's `[store]` (`backend`, `database_file`, `postgresql_url`).
    func database() throws -> Database {
        if let db = self.db {
            return try Self.database(named: db)
        }
        let configFile: String
        if let config = self.config {
            configFile = config
        } else if let found = P8Configuration.findDefaultConfigFile() {
            configFile = found
        } else {
            throw CtlError(
                .usage,
                "no database: pass --db FILE|URL or --config FILE (there is no ./p-8.conf or config/p-8.conf.example "
                    + "here)"
            )
        }
        let store: StoreConfiguration
        do {
            store = try P8Configuration.load(configFile: configFile).store
        } catch {
            throw CtlError(.badConfig, "\(error)")
        }
        switch store.backend {
        case .sqlite:
            return .file(store.databaseFile)
        case .postgresql:
            do {
                return .postgresql(try PostgreSQLURL(store.postgresqlURL ?? ""))
            } catch {
                throw CtlError(.badConfig, "\(configFile): [store] postgresql_url: \(error)")
            }
        }
    }

    /// `--db` or a destination: a `postgresql://` (or `postgres://`) URL, else a file.
    static func database(named name: String) throws -> Database {
        guard name.hasPrefix("postgresql://") || name.hasPrefix("postgres://") else {
            return .file(name)
        }
        do {
            return .postgresql(try PostgreSQLURL(name))
        } catch {
            throw CtlError(.usage, "\(error)")
        }
    }

    /// Opens the database read-only: works whether or not the server runs, and never changes it (an SQLite file
    /// opened read-only; a PostgreSQL database whose schema is checked, never created or migrated).
    func openReadOnly() async throws -> any ChannelLogStore {
        do {
            switch try self.database() {
            case .file(let path):
                return try await ChannelStore.openReadOnly(path: path, logger: ctlLogger)
            case .postgresql(let url):
                return try await Self.openPostgreSQL(url)
            }
        } catch {
            throw CtlError.reporting(error)
        }
    }

    /// Opens the database for writing, after checking that it exists and is a current P-8 database (so that
    /// `p8ctl` never creates or migrates one).
    func openForWriting() async throws -> any ChannelLogStore {
        let store = try await self.openReadOnly()
        guard let readOnly = store as? ChannelStore else {
            return store
        }
        do {
            return try await ChannelStore.open(
                configuration: StoreConfiguration(databaseFile: readOnly.path),
                logger: ctlLogger
            )
        } catch {
            throw CtlError.reporting(error)
        }
    }

    /// A PostgreSQL store for `p8ctl`: no following of other nodes, no migration.
    static func openPostgreSQL(_ url: PostgreSQLURL) async throws -> PostgreSQLStore {
        try await PostgreSQLStore.open(
            url: url,
            configuration: StoreConfiguration(databaseFile: ""),
            logger: ctlLogger,
            follows: false,
            migrates: false
        )
    }
}

/// `p8ctl` logs nothing: what it has to say goes to stdout, or to stderr as one error line.
let ctlLogger = Logger(label: "p8ctl", factory: { _ in SwiftLogNoOpLogHandler() })
