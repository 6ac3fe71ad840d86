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
            let path = try RunnerStatusFile.path(rundir: self.rundir, config: self.options.config)
            let status = try RunnerStatusFile.readLive(at: path)
            let object = status.object
            let runnerPid = Int(status.runnerPid)
            let held = try? await self.options.openReadOnly().holds(channel: nil).filter { $0.orphanedAt == nil }.count
            let now = Date()
            let parse = { (key: String) -> Date? in
                (object[key] as? String).flatMap { RunnerStatusFile.date($0) }
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
                fields.append(("handovers", .int(Int64(status.handovers))))
                fields.append(
                    (
                        "lastHandover",
                        status.lastHandover.map {
                            .object([
                                ("at", .string($0.at)), ("milliseconds", .int(Int(($0.seconds * 1000).rounded()))),
                            ])
                        }
                            ?? .null
                    )
                )
                fields.append(
                    (
                        "lastHandoverFailure",
                        status.lastHandoverFailure.map {
                            .object([("at", .string($0.at)), ("cause", .string($0.cause))])
                        }
                            ?? .null
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
            if let last = status.lastHandover {
                Output.line(
                    "handovers \(status.handovers), the last at \(last.at) in \(String(format: "%.3f", last.seconds)) s"
                )
            }
            if let failure = status.lastHandoverFailure {
                Output.line("last failed restart \(failure.at): \(failure.cause)")
            }
            Output.line("held     \(held.map(String.init) ?? "- (no database)")")
        }
    }
}
