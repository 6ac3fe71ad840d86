import Foundation
import Glibc

/// The runner's status file, `p8-runner.json` in the rundir (mode 0600, rewritten whole on every change and
/// removed when the runner stops), which `p8ctl status` reads: the runner's and the server's pids, when each
/// started, every server restart with its cause (the last 50), and the restarts asked for (SIGUSR2, `p8ctl
/// restart`): how many completed, the last one's hand-over time, and the last that failed, with why.
struct RunnerStatus {
    static let fileName = "p8-runner.json"
    static let keptRestarts = 50

    let path: String
    private let runnerStarted = Date()
    private var serverPid: pid_t = 0
    private var serverStarted: Date?
    private var serverReadyAt: Date?
    private var restarts = 0
    private var causes: [(at: Date, cause: String)] = []
    private var handovers = 0
    private var lastHandover: (at: Date, seconds: Double)?
    private var lastHandoverFailure: (at: Date, cause: String)?

    init(rundir: String) {
        self.path = (rundir as NSString).appendingPathComponent(Self.fileName)
        try? FileManager.default.createDirectory(atPath: rundir, withIntermediateDirectories: true)
    }

    mutating func serverStarted(pid: pid_t) {
        self.serverPid = pid
        self.serverStarted = Date()
        self.serverReadyAt = nil
        self.write()
    }

    mutating func serverReady() {
        self.serverReadyAt = Date()
        self.write()
    }

    /// A restart asked for completed: `pid` is the server now.
    mutating func serverRestarted(pid: pid_t, seconds: Double) {
        self.serverPid = pid
        self.serverStarted = Date().addingTimeInterval(-seconds)
        self.serverReadyAt = Date()
        self.handovers += 1
        self.lastHandover = (Date(), seconds)
        self.write()
    }

    /// A restart asked for failed; the server that ran keeps serving (unless it is gone too).
    mutating func restartFailed(cause: String) {
        self.lastHandoverFailure = (Date(), cause)
        self.write()
    }

    mutating func serverEnded(cause: String) {
        self.serverPid = 0
        self.restarts += 1
        self.causes.append((Date(), cause))
        if self.causes.count > Self.keptRestarts {
            self.causes.removeFirst()
        }
        self.write()
    }

    func remove() {
        unlink(self.path)
    }

    private func write() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var object: [String: Any] = [
            "runnerPid": Int(getpid()),
            "runnerStartedAt": formatter.string(from: self.runnerStarted),
            "restarts": self.restarts,
            "restartCauses": self.causes.map { ["at": formatter.string(from: $0.at), "cause": $0.cause] },
            "handovers": self.handovers,
        ]
        if let last = self.lastHandover {
            object["lastHandover"] = ["at": formatter.string(from: last.at), "seconds": last.seconds] as [String: Any]
        }
        if let failure = self.lastHandoverFailure {
            object["lastHandoverFailure"] = ["at": formatter.string(from: failure.at), "cause": failure.cause]
        }
        if self.serverPid > 0 {
            object["serverPid"] = Int(self.serverPid)
        }
        if let started = self.serverStarted, self.serverPid > 0 {
            object["serverStartedAt"] = formatter.string(from: started)
        }
        if let ready = self.serverReadyAt, self.serverPid > 0 {
            object["serverReadyAt"] = formatter.string(from: ready)
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return
        }
        let temporary = self.path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            return
        }
        _ = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        rename(temporary, self.path)
    }
}
