import Foundation
import GRDB
import P8TestSupport
import Store
import Testing

/// What goes wrong: missing, foreign, damaged or newer databases, bad arguments, config files; help and version.
@Suite("p8ctl errors, config and help", .timeLimit(.minutes(1)))
struct ErrorTests {
    @Test("a missing database file exits 66 with one line, and is not created")
    func missingDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("absent.sqlite")
        for arguments in [["channels"], ["history", "news"], ["held"], ["export"], ["trim", "--all", "--keep", "1"]] {
            let result = try await ctl(arguments + ["--db", path])
            #expect(result.status == 66, "\(arguments): \(result)")
            #expect(result.stderr == "p8ctl: \(path): no such database file (p8 creates it when it first starts)\n")
            #expect(result.stdout.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("another application's database, a file that is not SQLite, or a newer P-8's database exits 65")
    func unusableDatabases() async throws {
        let directory = try TemporaryDirectory()
        let foreign = directory.path("foreign.sqlite")
        let queue = try DatabaseQueue(path: foreign)
        try await queue.write { db in try db.execute(sql: "CREATE TABLE note (text TEXT)") }
        try queue.close()
        let result = try await ctl(["channels", "--db", foreign])
        #expect(result.status == 65, "\(result)")
        #expect(result.stderr.hasPrefix("p8ctl: \(foreign): the file is an SQLite database of another application"))
        #expect(result.stderr.split(separator: "\n").count == 1)

        let text = directory.path("notes.txt")
        try String(repeating: "not a database\n", count: 100).write(toFile: text, atomically: true, encoding: .utf8)
        let notSQLite = try await ctl(["held", "--db", text])
        #expect(notSQLite.status == 65, "\(notSQLite)")
        #expect(notSQLite.stderr.hasPrefix("p8ctl: \(text): the file is not an SQLite database"))

        let fixture = try await Fixture.make()
        let writer = try DatabaseQueue(path: fixture.path)
        try await writer.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('9999_from_the_future')")
        }
        try writer.close()
        let newer = try await ctl(["history", "news", "--db", fixture.path])
        #expect(newer.status == 65, "\(newer)")
        #expect(newer.stderr.contains("written by a newer P-8 (migrations 9999_from_the_future"))
    }

    @Test(
        "bad arguments exit 64 with one line naming the command's help",
        arguments: [
            (["history"], "p8ctl: Missing expected argument '<channel>' (see 'p8ctl history --help')"),
            (
                ["history", "news", "--after", "a", "--after-seq", "1"],
                "give at most one of --after, --after-seq and --since"
            ),
            (["history", "news", "--limit", "0"], "--limit must be at least 1"),
            (["history", "news", "--since", "yesterday-ish"], "'yesterday-ish' is invalid for '--since <time>'"),
            (["history", "news", "--limit", "x"], "'x' is invalid for '--limit <n>'"),
            (["history", "news", "--since", "2026-02-30"], "'2026-02-30' is invalid for '--since <time>'"),
            (["history", "news", "--since", "2026-11-24 25:00"], "is invalid for '--since <time>'"),
            // An age reaching before year 1 (found by fuzzing: it read as a time p8ctl printed wrongly).
            (["history", "news", "--since", "2762827d"], "'2762827d' is invalid for '--since <time>'"),
            // A time before year 1 (year 0000 is 1 BC, printed as 0001; found by fuzzing).
            (["history", "news", "--since", "0000-11-14T10:05:23Z"], "is invalid for '--since <time>'"),
            (["history", "news", "--since", "0001-01-01T00:30:00+01:00"], "is invalid for '--since <time>'"),
            // Fields out of range are refused, not carried into the next minute (found by fuzzing).
            (["history", "news", "--since", "2026-11-24T21:05:83Z"], "is invalid for '--since <time>'"),
            (["history", "news", "--since", "2026-11-24 21:75"], "is invalid for '--since <time>'"),
            (["trim", "news"], "give one of --keep N and --before TIME"),
            (["trim", "--keep", "3"], "name one channel, or pass --all (not both)"),
            (["trim", "news", "--all", "--keep", "3"], "name one channel, or pass --all (not both)"),
            (["trim", "news", "--keep", "3", "--before", "1h"], "give one of --keep N and --before TIME"),
            (["tail"], "Missing expected argument '<channel> ...'"),
            (["frobnicate"], "Unexpected argument 'frobnicate'"),
            (["channels", "--colour"], "Unknown option '--colour'"),
        ]
    )
    func badArguments(arguments: [String], message: String) async throws {
        // Arguments are checked before the database is opened.
        let result = try await ctl(arguments)
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("p8ctl: "))
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }

    @Test("the database is found through --config, ./p-8.conf, and --db wins over --config")
    func configFinding() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 1)
        let directory = fixture.directory
        try "[store]\ndatabase_file=p8.sqlite\n".write(
            toFile: directory.path("p-8.conf"),
            atomically: true,
            encoding: .utf8
        )
        try "[store]\ndatabase_file=elsewhere.sqlite\n".write(
            toFile: directory.path("other.conf"),
            atomically: true,
            encoding: .utf8
        )
        let byDefault = try await ctl(["channels"], in: directory.url.path)
        #expect(byDefault.status == 0, "\(byDefault)")
        #expect(byDefault.stdout.contains("news"))
        let byConfig = try await ctl(["channels", "--config", directory.path("p-8.conf")])
        #expect(byConfig.status == 0, "\(byConfig)")
        let elsewhere = try await ctl(["channels", "--config", directory.path("other.conf")])
        #expect(elsewhere.status == 66)
        #expect(
            elsewhere.stderr
                == "p8ctl: \(directory.path("elsewhere.sqlite")): no such database file (p8 creates it when it first starts)\n"
        )
        let dbWins = try await ctl(["channels", "--config", directory.path("other.conf"), "--db", fixture.path])
        #expect(dbWins.status == 0)

        let missingConfig = try await ctl(["channels", "--config", directory.path("absent.conf")])
        #expect(missingConfig.status == 78, "\(missingConfig)")
        #expect(missingConfig.stderr.contains("cannot read the config file"))
        #expect(missingConfig.stderr.split(separator: "\n").count == 1)
        let empty = try TemporaryDirectory()
        let noConfig = try await ctl(["channels"], in: empty.url.path)
        #expect(noConfig.status == 64)
        #expect(noConfig.stderr.hasPrefix("p8ctl: no database: pass --db FILE|URL or --config FILE"))
    }

    @Test("--help lists the commands, each command's help has an example, --version names the schema")
    func helpAndVersion() async throws {
        let help = try await ctl(["--help"])
        #expect(help.status == 0)
        for command in ["channels", "history", "tail", "held", "replay", "export", "trim", "backup"] {
            #expect(help.stdout.contains("  \(command) "), "\(command)")
            let commandHelp = try await ctl([command, "--help"])
            #expect(commandHelp.status == 0)
            #expect(commandHelp.stdout.contains(":\n  p8ctl \(command) "), "\(command): \(commandHelp.stdout)")
            #expect(commandHelp.stdout.contains("--db <file|url>"))
        }
        #expect(help.stdout.contains("Exit status:"))
        let history = try await ctl(["help", "history"])
        #expect(history.stdout.contains("--after <id>"))
        #expect(history.stdout.contains("--since <time>"))
        let replay = try await ctl(["replay", "--help"])
        #expect(replay.stdout.contains("replay --publish"))
        let version = try await ctl(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout == "p8ctl 0.1.0 (store schema 0003_item_meta)\n")
        let completion = try await ctl(["--generate-completion-script", "bash"])
        #expect(completion.status == 0)
        #expect(completion.stdout.contains("backup"))
    }
}
