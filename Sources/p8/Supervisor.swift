import Foundation
import Glibc
import Logging
import Runner

/// The runner's loop: starts the server process on the inherited listening sockets, restarts it when it dies
/// (at once, then backing off from 0.1 s doubling to 10 s while it keeps dying; a minute of good running
/// resets that), passes SIGHUP on, and on SIGTERM or SIGINT stops the server gracefully and returns. A first
/// server that ends before it is ready ends the runner with its exit status.
///
/// SIGUSR2 restarts the server without dropping connections: a new server (the binary on disk now, the config
/// read again) starts beside the running one; once it listens on the hand-over socket it prints
/// `p8 handover-ready` and the runner sends SIGUSR2 to the running one, which hands its connections over and
/// exits; the new one then takes them over and becomes the server. A new server that ends before it is ready
/// leaves the running one serving.
///
/// Runs on the main thread, which spawned every server: Linux's parent-death signal (the server asks for
/// SIGKILL when its parent thread ends) then fires exactly when the runner ends.
struct Supervisor {
    var sockets: ListenSockets
    var serverArguments: [String]
    var status: RunnerStatus
    var logger: Logger
    /// The hand-over socket every server is told of.
    let handoverSocket: String
    /// The binary, as it was on disk when the runner started (a restart runs what is there now).
    let executable: String

    /// A server process and its stdout (a pipe: readiness lines).
    private struct Child {
        enum Role {
            /// The server.
            case current
            /// A restart's new server, until it is ready.
            case successor
            /// A server that hands its connections over, then exits.
            case retiring
        }

        var pid: pid_t
        var role: Role
        var started = Date()
        var pipe: CInt
        var buffer: [UInt8] = []
        var ready = false
        /// A successor that listens on the hand-over socket (the old server has been told).
        var waitingForHandover = false
    }

    private var children: [Child] = []
    private var printedReady = false
    private var backoff: Double = 0
    private var restartAt: Date?
    private var stopping = false
    /// When the restart under way started.
    private var handoverStarted: Date?

    static let firstBackoff = 0.1
    static let maxBackoff = 10.0
    static let goodRun = 60.0

    init(sockets: ListenSockets, serverArguments: [String], status: RunnerStatus, rundir: String, logger: Logger) {
        self.sockets = sockets
        self.serverArguments = serverArguments
        self.status = status
        self.logger = logger
        self.handoverSocket = (rundir as NSString).appendingPathComponent("p8-handover.sock")
        self.executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
    }

    private var current: Child? {
        self.children.first { $0.role == .current }
    }

    /// Returns the exit status of the runner: 0 after a graceful stop.
    mutating func run() -> Int32 {
        guard let signals = Self.signalPipe() else {
            self.logger.error("pipe: \(String(cString: strerror(errno)))")
            return 1
        }
        self.spawn(role: .current)
        while true {
            var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
            let pipes = self.children.map(\.pipe).filter { $0 >= 0 }
            fds += pipes.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            var timeout: Int32 = -1
            if let restartAt = self.restartAt {
                timeout = max(0, Int32(restartAt.timeIntervalSinceNow * 1000))
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR {
                self.logger.error("poll: \(String(cString: strerror(errno)))")
                return 1
            }
            for (index, pipe) in pipes.enumerated() where fds[index + 1].revents != 0 {
                self.readOutput(of: pipe)
            }
            if fds[0].revents != 0 {
                var signal: CInt = 0
                if read(signals, &signal, MemoryLayout<CInt>.size) == MemoryLayout<CInt>.size {
                    if let exit = self.handle(signal: signal) {
                        self.sockets.closeAll()
                        self.status.remove()
                        unlink(self.handoverSocket)
                        return exit
                    }
                }
            }
            if let restartAt = self.restartAt, restartAt <= Date(), !self.stopping {
                self.restartAt = nil
                self.spawn(role: .current)
            }
        }
    }

    /// Handles one signal; returns the runner's exit status once it should end.
    private mutating func handle(signal: CInt) -> Int32? {
        switch signal {
        case SIGINT, SIGTERM:
            if !self.stopping {
                self.logger.info("stopping the server", metadata: ["p8.signal": "\(Self.name(signal))"])
            }
            self.stopping = true
            self.restartAt = nil
            guard !self.children.isEmpty else {
                return 0
            }
            for child in self.children {
                kill(child.pid, SIGTERM)
            }
        case SIGHUP:
            if let current = self.current {
                kill(current.pid, SIGHUP)
            }
        case SIGUSR2:
            self.startRestart()
        case SIGCHLD:
            return self.reap()
        default:
            break
        }
        return nil
    }

    /// SIGUSR2: starts a new server beside the running one (at most one restart at a time).
    private mutating func startRestart() {
        guard !self.stopping else { return }
        guard !self.children.contains(where: { $0.role != .current }) else {
            self.logger.warning("restart requested while one is under way: ignored")
            return
        }
        guard let current = self.current, current.ready else {
            self.logger.warning("restart requested while no server is ready: ignored")
            return
        }
        self.logger.info("restarting the server without dropping connections")
        self.handoverStarted = Date()
        self.spawn(role: .successor)
    }

    /// Collects every server that ended: logs how, and schedules a replacement (or ends the runner).
    private mutating func reap() -> Int32? {
        var index = 0
        while index < self.children.count {
            var status: Int32 = 0
            let pid = self.children[index].pid
            guard waitpid(pid, &status, WNOHANG) == pid else {
                index += 1
                continue
            }
            self.drainOutput(of: self.children[index].pipe)
            // Its last lines may have changed roles.
            let child = self.children.remove(at: index)
            if child.pipe >= 0 {
                close(child.pipe)
            }
            if let exit = self.ended(child, status: status) {
                return exit
            }
        }
        return nil
    }

    /// A server ended: what it means depends on its role.
    private mutating func ended(_ child: Child, status: Int32) -> Int32? {
        let cause = Self.describe(status: status)
        if self.stopping {
            self.logger.info(
                "server stopped",
                metadata: ["p8.server.pid": "\(child.pid)", "p8.server.exit": "\(cause)"]
            )
            return self.children.isEmpty ? 0 : nil
        }
        switch child.role {
        case .retiring:
            self.logger.info(
                "the previous server exited",
                metadata: ["p8.server.pid": "\(child.pid)", "p8.server.exit": "\(cause)"]
            )
            return nil
        case .successor:
            self.handoverStarted = nil
            if self.current != nil && !child.waitingForHandover {
                self.logger.error(
                    "restart failed: the new server did not start; the running server keeps serving",
                    metadata: ["p8.server.exit": "\(cause)"]
                )
                self.status.restartFailed(cause: "the new server did not start: \(cause)")
                return nil
            }
            // It ended after the old server was told to hand over: no server is left.
            self.logger.error("the new server ended during the hand-over", metadata: ["p8.server.exit": "\(cause)"])
            self.status.restartFailed(cause: "the new server ended during the hand-over: \(cause)")
        case .current:
            // A first server that never got ready (a config it rejects, a certificate it cannot use) would fail
            // the same way again: the runner ends with its status, as the single process did.
            if !self.printedReady {
                self.logger.error("the server did not start", metadata: ["p8.server.exit": "\(cause)"])
                let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return code == 0 ? 1 : code
            }
            if let successor = self.children.first(where: { $0.role == .successor }), !successor.waitingForHandover {
                // The server died while a new one was starting: that one starts from scratch instead.
                kill(successor.pid, SIGKILL)
            }
        }
        let ran = Date().timeIntervalSince(child.started)
        if ran >= Self.goodRun {
            self.backoff = 0
        }
        self.logger.error(
            "server ended; starting a new one",
            metadata: [
                "p8.server.pid": "\(child.pid)", "p8.server.exit": "\(cause)",
                "p8.server.ran_seconds": "\(String(format: "%.1f", ran))", "p8.restart_in": "\(self.backoff)",
            ]
        )
        self.status.serverEnded(cause: cause)
        self.restartAt = Date().addingTimeInterval(self.backoff)
        self.backoff = self.backoff == 0 ? Self.firstBackoff : min(Self.maxBackoff, self.backoff * 2)
        return nil
    }

    private mutating func spawn(role: Child.Role) {
        var pipeFds: [CInt] = [0, 0]
        // Only this thread spawns, so no other child can inherit the pipe before it is close-on-exec.
        guard pipe(&pipeFds) == 0, Self.closeOnExec(pipeFds[0]), Self.closeOnExec(pipeFds[1]) else {
            self.logger.error("pipe: \(String(cString: strerror(errno)))")
            if role == .current {
                self.restartAt = Date().addingTimeInterval(Self.maxBackoff)
            }
            return
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in Self.handledSignals + [SIGPIPE] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var environment = ProcessInfo.processInfo.environment
        environment["P8_LISTEN_FDS"] = self.sockets.environmentValue
        environment["P8_RUNNER_PID"] = String(getpid())
        environment["P8_HANDOVER_SOCKET"] = self.handoverSocket
        environment["P8_HANDOVER_SUCCESSOR"] = role == .successor ? "1" : nil
        let arguments = [CommandLine.arguments[0]] + self.serverArguments
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp {
                free(pointer)
            }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, self.executable, &actions, &attributes, argv, envp)
        close(pipeFds[1])
        guard result == 0 else {
            close(pipeFds[0])
            let reason = String(cString: strerror(result))
            if role == .successor {
                self.logger.error(
                    "restart failed: cannot start the new server: \(reason); the running server keeps serving"
                )
                self.status.restartFailed(cause: "cannot start the new server: \(reason)")
                self.handoverStarted = nil
            } else {
                self.logger.error("cannot start the server: \(reason)")
                self.restartAt = Date().addingTimeInterval(max(Self.firstBackoff, self.backoff))
            }
            return
        }
        self.children.append(Child(pid: pid, role: role, pipe: pipeFds[0]))
        if role == .current {
            self.status.serverStarted(pid: pid)
        }
        self.logger.info(
            role == .successor ? "new server started" : "server started",
            metadata: ["p8.server.pid": "\(pid)"]
        )
    }

    /// Reads what a server wrote on stdout: the runner's first readiness line is printed, later ones are not
    /// (scripts read exactly one); a successor's lines drive the restart; other lines pass through.
    private mutating func readOutput(of pipe: CInt) {
        guard let index = self.children.firstIndex(where: { $0.pipe == pipe }) else { return }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = read(pipe, &chunk, chunk.count)
        if count <= 0 {
            close(pipe)
            self.children[index].pipe = -1
            return
        }
        self.children[index].buffer += chunk[0..<count]
        while let newline = self.children[index].buffer.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: self.children[index].buffer[..<newline], as: UTF8.self)
            self.children[index].buffer.removeSubrange(...newline)
            if line == P8Server.handoverReadyLine {
                self.successorListening(at: index)
                continue
            }
            if line.hasPrefix("p8 ready") {
                self.serverReady(at: index)
                if self.printedReady {
                    continue
                }
                self.printedReady = true
            }
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    /// The restart's new server waits for the connections: the running server is told to hand them over.
    private mutating func successorListening(at index: Int) {
        guard self.children[index].role == .successor,
            let old = self.children.firstIndex(where: { $0.role == .current })
        else { return }
        self.children[index].waitingForHandover = true
        self.children[old].role = .retiring
        kill(self.children[old].pid, SIGUSR2)
    }

    private mutating func serverReady(at index: Int) {
        self.children[index].ready = true
        guard self.children[index].role == .successor else {
            self.status.serverReady()
            return
        }
        self.children[index].role = .current
        let pid = self.children[index].pid
        let seconds = self.handoverStarted.map { Date().timeIntervalSince($0) } ?? 0
        self.handoverStarted = nil
        self.status.serverRestarted(pid: pid, seconds: seconds)
        self.logger.info(
            "restart complete",
            metadata: ["p8.server.pid": "\(pid)", "p8.restart.seconds": "\(String(format: "%.3f", seconds))"]
        )
    }

    private mutating func drainOutput(of pipe: CInt) {
        guard pipe >= 0 else { return }
        while self.children.contains(where: { $0.pipe == pipe }) {
            var fds = [pollfd(fd: pipe, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, 0) > 0 else {
                return
            }
            self.readOutput(of: pipe)
        }
    }
}
