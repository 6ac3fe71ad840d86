import Foundation
import GRIP
import Glibc
import Runner

/// The runner's status file, `p8-runner.json` in the rundir, which `p8` writes (see `RunnerStatus` there) and
/// `status` and `restart` read.
struct RunnerStatusFile {
    let object: [String: Any]

    /// The file's path: in `rundir`, else in the rundir of the config file (`--config`, else the default one).
    static func path(rundir: String?, config: String?) throws -> String {
        if let rundir {
            return (rundir as NSString).appendingPathComponent("p8-runner.json")
        }
        guard let configFile = config ?? P8Configuration.findDefaultConfigFile() else {
            throw CtlError(.usage, "no rundir: pass --rundir DIR or --config FILE")
        }
        do {
            let directory = try P8Configuration.load(configFile: configFile).global.rundir
            return (directory as NSString).appendingPathComponent("p8-runner.json")
        } catch {
            throw CtlError(.badConfig, "\(error)")
        }
    }

    /// The status of a runner that is alive; throws when no runner runs.
    static func readLive(at path: String) throws -> RunnerStatusFile {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let runnerPid = object["runnerPid"] as? Int, kill(pid_t(runnerPid), 0) == 0
        else {
            throw CtlError(.failure, "no runner is running (no live \(path))")
        }
        return RunnerStatusFile(object: object)
    }

    var runnerPid: pid_t { pid_t(self.object["runnerPid"] as? Int ?? 0) }
    var serverPid: pid_t? { (self.object["serverPid"] as? Int).map { pid_t($0) } }
    /// Restarts asked for that completed.
    var handovers: Int { self.object["handovers"] as? Int ?? 0 }
    /// The last completed one: when, and how long it took.
    var lastHandover: (at: String, seconds: Double)? {
        guard let last = self.object["lastHandover"] as? [String: Any], let at = last["at"] as? String,
            let seconds = last["seconds"] as? Double
        else { return nil }
        return (at, seconds)
    }
    /// The last that failed: when, and why.
    var lastHandoverFailure: (at: String, cause: String)? {
        guard let last = self.object["lastHandoverFailure"] as? [String: String], let at = last["at"],
            let cause = last["cause"]
        else { return nil }
        return (at, cause)
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
