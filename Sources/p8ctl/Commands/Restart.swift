import ArgumentParser
import Foundation
import Glibc

extension P8Ctl {
    /// `p8ctl restart`: the restart without dropped connections, and its outcome.
    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restart",
            abstract: "Restart the server without dropping connections, and wait for the outcome.",
            discussion: """
                Sends SIGUSR2 to the runner (found in its status file, p8-runner.json in the rundir): the runner \
                starts a new server (the p8 binary on disk now, p-8.conf and the routes read again), the running \
                server hands its held connections over to it and exits. Waits until the runner reports the \
                restart complete or failed. A new server that cannot start (a config that no longer parses, a \
                broken binary) leaves the running one serving: its reason is printed.

                Example:
                  p8ctl restart

                Exit status: 0 restarted; 1 the restart failed, timed out, or no runner runs; 78 a bad config \
                file.
                """
        )

        @Option(
            name: .long,
            help: ArgumentHelp("The rundir (default: the config file's rundir).", valueName: "dir"),
            completion: .directory
        )
        var rundir: String?

        @Option(name: .long, help: "The config file (for its rundir).", completion: .file())
        var config: String?

        @Option(name: .long, help: ArgumentHelp("Seconds to wait for the outcome.", valueName: "seconds"))
        var timeout: Double = 60

        func run() async throws {
            let path = try RunnerStatusFile.path(rundir: self.rundir, config: self.config)
            let before = try RunnerStatusFile.readLive(at: path)
            guard kill(before.runnerPid, SIGUSR2) == 0 else {
                throw CtlError(
                    .failure,
                    "cannot signal the runner (pid \(before.runnerPid)): \(String(cString: strerror(errno)))"
                )
            }
            let deadline = Date().addingTimeInterval(self.timeout)
            while Date() < deadline {
                try await Task.sleep(for: .milliseconds(50))
                guard let now = try? RunnerStatusFile.readLive(at: path) else { continue }
                if now.handovers > before.handovers {
                    let seconds = now.lastHandover.map { String(format: "%.3f", $0.seconds) } ?? "?"
                    Output.line("restarted: server pid \(now.serverPid.map(String.init) ?? "-") (in \(seconds) s)")
                    return
                }
                if let failure = now.lastHandoverFailure, failure.at != before.lastHandoverFailure?.at {
                    throw CtlError(.failure, "restart failed: \(failure.cause)")
                }
            }
            throw CtlError(.failure, "no outcome within \(self.timeout) s; see the runner's log")
        }
    }
}
