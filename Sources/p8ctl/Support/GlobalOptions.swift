import ArgumentParser
import Foundation
import GRIP
import Logging
import Runner
import Store

/// The options every `p8ctl` command takes: where the database is, and JSON output.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The config file whose [store] database_file is the database (default: ./p-8.conf, else "
                + "config/p-8.conf.example, as p8 finds it).",
            valueName: "file"
        ),
        completion: .file()
    )
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp("The database file itself (wins over --config).", valueName: "file"),
        completion: .file()
    )
    var db: String?

    @Flag(name: .long, help: "Print JSON for scripts (NDJSON, one object a line, for streams); times in RFC 3339.")
    var json = false

    /// The database file: `--db`, else the config file's `[store] database_file`.
    func databasePath() throws -> String {
        if let db = self.db {
            return db
        }
        let configFile: String
        if let config = self.config {
            configFile = config
        } else if let found = P8Configuration.findDefaultConfigFile() {
            configFile = found
        } else {
            throw CtlError(
                .usage,
                "no database: pass --db FILE or --config FILE (there is no ./p-8.conf or config/p-8.conf.example here)"
            )
        }
        do {
            return try P8Configuration.load(configFile: configFile).store.databaseFile
        } catch {
            throw CtlError(.badConfig, "\(error)")
        }
    }

    /// Opens the database read-only: works whether or not the server runs, and never changes the file.
    func openReadOnly() async throws -> ChannelStore {
        let path = try self.databasePath()
        do {
            return try await ChannelStore.openReadOnly(path: path, logger: ctlLogger)
        } catch {
            throw CtlError.reporting(error)
        }
    }

    /// Opens the database for writing, after checking read-only that it exists and is a current P-8 database
    /// (so that `p8ctl` never creates or migrates one).
    func openForWriting() async throws -> ChannelStore {
        let path = try await self.openReadOnly().path
        do {
            return try await ChannelStore.open(configuration: StoreConfiguration(databaseFile: path), logger: ctlLogger)
        } catch {
            throw CtlError.reporting(error)
        }
    }
}

/// `p8ctl` logs nothing: what it has to say goes to stdout, or to stderr as one error line.
let ctlLogger = Logger(label: "p8ctl", factory: { _ in SwiftLogNoOpLogHandler() })
