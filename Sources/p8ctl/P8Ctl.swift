import ArgumentParser
import Foundation
import Store

/// `p8ctl`: the operator's tool. Reads (and for `trim`, writes) the P-8 database directly, so it works whether or
/// not the server runs.
@main
struct P8Ctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p8ctl",
        abstract: "Inspect and maintain a P-8 database, and publish through a running p8.",
        discussion: """
            Every command reads the database directly: read-only for inspection (safe while p8 runs, \
            and when it is down), for writing only for trim. The database is the one the config file names \
            ([store] database_file, or backend=postgresql and postgresql_url; the config is found as p8 \
            finds it: --config FILE, else ./p-8.conf, else config/p-8.conf.example), or --db FILE, or --db \
            postgresql://user@host:port/db for the database that several nodes share. p8ctl never creates \
            or migrates a database.

            publish, stats and replay --publish talk to the running server's publish API instead ([handler] \
            push_in_http_addr and push_in_http_port of the config, or --url; a JWT from push_in_http_key or \
            --key). status reads the runner's status file in the rundir (p8-runner.json).

            Examples:
              p8ctl channels
              p8ctl history news --after 2f1c9a0e3b6d4e21-41 --content
              p8ctl held --channel news
              p8ctl tail news --json
              p8ctl publish news 'data: hello' --id n42
              p8ctl stats
              p8ctl status

            Exit status: 0 success; 1 an SQLite, PostgreSQL or file error; 2 unknown channel; 3 a cursor older than what is \
            retained; 4 an unknown cursor; 64 bad arguments; 65 not a usable P-8 database (another \
            application's, damaged, newer, not migrated); 66 no database file; 69 the server's publish API \
            cannot be reached; 73 the output file exists; 75 the PostgreSQL server cannot be reached or \
            refuses the login; 76 the server answered an error; 77 the server \
            refused the credentials; 78 the config file is missing or invalid.
            """,
        version: P8Ctl.versionText,
        subcommands: [
            Channels.self, History.self, Tail.self, Held.self, Replay.self, Export.self, Trim.self, Backup.self,
            Publish.self, Stats.self, Status.self, Restart.self,
        ]
    )

    /// `p8ctl VERSION (store schema NNNN_name)`: the newest migration this build knows.
    static var versionText: String {
        let schema = try? StoreMigrations.files().last?.identifier
        return "p8ctl 0.1.0 (store schema \(schema ?? "unknown"))"
    }

    /// Parses and runs the command; every error is one line on stderr and an exit status (see the discussion).
    static func main() async {
        do {
            var command = try Self.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as CtlError {
            Output.error(error.message)
            Self.exit(withError: ExitCode(error.status.rawValue))
        } catch let error as StoreError {
            let error = CtlError.reporting(error)
            Output.error(error.message)
            Self.exit(withError: ExitCode(error.status.rawValue))
        } catch {
            let code = Self.exitCode(for: error)
            if code == .success || error is ExitCode {
                // --help, --version, or an exit status already reported.
                Self.exit(withError: error)
            }
            let message = Self.message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            Output.error("\(message) (see '\(Self.helpCommand()) --help')")
            Self.exit(withError: ExitCode(code.rawValue))
        }
    }

    /// `p8ctl SUBCOMMAND` when the arguments name one, else `p8ctl`.
    private static func helpCommand() -> String {
        let names = Self.configuration.subcommands.compactMap { $0.configuration.commandName }
        if let name = CommandLine.arguments.dropFirst().first(where: { names.contains($0) }) {
            return "p8ctl \(name)"
        }
        return "p8ctl"
    }
}
