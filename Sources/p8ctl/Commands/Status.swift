import ArgumentParser
import Foundation
import GRIP
import Runner
import Store

extension P8Ctl {
    /// `p8ctl status`: the runner and its server.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract:
                "Show the runner and server processes: pids, uptime, restarts and their causes, held connections.",
            discussion: """
                Reads the runner's status file, p8-runner.json in the rundir (written by p8, mode 0600, removed \
                when the runner stops), and counts the held connections recorded in the database (orphaned \
                records of an earlier server not included). With --json, one object with the same fields.

                Example:
                  p8ctl status

                Exit status: 0 a runner is up; 1 no runner runs (no status file, or its runner is gone); 78 a \
                bad config file.
                """
        )

        @Option(
            name: .long,
            help: ArgumentHelp("The rundir (default: the config file's rundir).", valueName: "dir"),
            completion: .directory
        )
        var rundir: String?

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func run() async throws {
            let path = (try self.runDirectory() as NSString).appendingPathComponent("p8-runner.json")
            guard let data = FileManager.default.contents(atPath: path),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let runnerPid = object["runnerPid"] as? Int, kill(pid_t(runnerPid), 0) == 0
            else {
                throw CtlError(.failure, "no runner is running (no live \(path))")
            }
            let held = try? await self.options.openReadOnly().holds(channel: nil).filter { $0.orphanedAt == nil }.count
            let now = Date()
            let parse = { (key: String) -> Date? in
                (object[key] as? String).flatMap { Self.date($0) }
            }
            let causes = (object["restartCauses"] as? [[String: String]]) ?? []
            if self.options.json {
                var fields: [(String, JSONValue)] = [("runnerPid", .int(Int64(runnerPid)))]
                fields.append(("serverPid", (object["serverPid"] as? Int).map { .int(Int64($0)) } ?? .null))
                fields.append(("runnerStartedAt", .optional(object["runnerStartedAt"] as? String)))
                fields.append(("serverStartedAt", .optional(object["serverStartedAt"] as? String)))
                fields.append(("serverReadyAt", .optional(object["serverReadyAt"] as? String)))
                fields.append(("restarts", .int(Int64((object["restarts"] as? Int) ?? 0))))
                fields.append(
                    (
                        "restartCauses",
                        .array(
                            causes.map { .object([("at", .optional($0["at"])), ("cause", .optional($0["cause"]))]) }
                        )
                    )
                )
                fields.append(("held", held.map { .int(Int64($0)) } ?? .null))
                Output.line(JSONValue.object(fields).pretty)
                return
            }
            let runnerUp = parse("runnerStartedAt").map { TimeFormat.age($0, now: now) } ?? "-"
            Output.line("runner   pid \(runnerPid), started \(runnerUp)")
            if let serverPid = object["serverPid"] as? Int {
                let up = parse("serverStartedAt").map { TimeFormat.age($0, now: now) } ?? "-"
                let ready = object["serverReadyAt"] == nil ? ", starting" : ""
                Output.line("server   pid \(serverPid), started \(up)\(ready)")
            } else {
                Output.line("server   not running (being restarted)")
            }
            Output.line("restarts \((object["restarts"] as? Int) ?? 0)")
            for cause in causes.suffix(10) {
                Output.line("  \(cause["at"] ?? "-")  \(cause["cause"] ?? "-")")
            }
            Output.line("held     \(held.map(String.init) ?? "- (no database)")")
        }

        private func runDirectory() throws -> String {
            if let rundir = self.rundir {
                return rundir
            }
            guard let configFile = self.options.config ?? P8Configuration.findDefaultConfigFile() else {
                throw CtlError(.usage, "no rundir: pass --rundir DIR or --config FILE")
            }
            do {
                return try P8Configuration.load(configFile: configFile).global.rundir
            } catch {
                throw CtlError(.badConfig, "\(error)")
            }
        }

        private static func date(_ text: String) -> Date? {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: text)
        }
    }
}
