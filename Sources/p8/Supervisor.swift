import Foundation
import Glibc
import Logging

/// The runner's loop: starts the server process on the inherited listening sockets, restarts it when it dies
/// (at once, then backing off from 0.1 s doubling to 10 s while it keeps dying; a minute of good running
/// resets that), passes SIGHUP on, and on SIGTERM or SIGINT stops the server gracefully and returns. A first
/// server that ends before it is ready ends the runner with its exit status.
///
/// Runs on the main thread, which spawned every server: Linux's parent-death signal (the server asks for
/// SIGKILL when its parent thread ends) then fires exactly when the runner ends.
struct Supervisor {
    var sockets: ListenSockets
    var serverArguments: [String]
    var status: RunnerStatus
    var logger: Logger

    private var serverPid: pid_t = 0
    private var serverStarted = Date()
    private var readyPipe: CInt = -1
    private var readyBuffer: [UInt8] = []
    private var printedReady = false
    private var backoff: Double = 0
    private var restartAt: Date?
    private var stopping = false

    static let firstBackoff = 0.1
    static let maxBackoff = 10.0
    static let goodRun = 60.0

    init(sockets: ListenSockets, serverArguments: [String], status: RunnerStatus, logger: Logger) {
        self.sockets = sockets
        self.serverArguments = serverArguments
        self.status = status
        self.logger = logger
    }

    /// Signals handled by the loop; blocked before any thread starts so that only the signalfd sees them.
    static let handledSignals: [CInt] = [SIGINT, SIGTERM, SIGHUP, SIGCHLD]

    static func blockSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in Self.handledSignals {
            sigaddset(&set, signal)
        }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// A pipe on which a thread of its own writes each handled signal as it arrives (`sigwait`), so that the
    /// loop waits on signals and on the server's output with one `poll`.
    private static func signalPipe() -> CInt? {
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0, Self.closeOnExec(fds[0]), Self.closeOnExec(fds[1]) else {
            return nil
        }
        let writer = fds[1]
        let thread = Thread {
            var set = sigset_t()
            sigemptyset(&set)
            for signal in Self.handledSignals {
                sigaddset(&set, signal)
            }
            while true {
                var signal: CInt = 0
                if sigwait(&set, &signal) == 0 {
                    _ = write(writer, &signal, MemoryLayout<CInt>.size)
                }
            }
        }
        thread.start()
        return fds[0]
    }

    private static func closeOnExec(_ fd: CInt) -> Bool {
        fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
    }

    /// Returns the exit status of the runner: 0 after a graceful stop.
    mutating func run() -> Int32 {
        guard let signals = Self.signalPipe() else {
            self.logger.error("pipe: \(String(cString: strerror(errno)))")
            return 1
        }
        self.spawn()
        while true {
            var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
            if self.readyPipe >= 0 {
                fds.append(pollfd(fd: self.readyPipe, events: Int16(POLLIN), revents: 0))
            }
            var timeout: Int32 = -1
            if let restartAt = self.restartAt {
                timeout = max(0, Int32(restartAt.timeIntervalSinceNow * 1000))
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR {
                self.logger.error("poll: \(String(cString: strerror(errno)))")
                return 1
            }
            if fds.count > 1 && fds[1].revents != 0 {
                self.readServerOutput()
            }
            if fds[0].revents != 0 {
                var signal: CInt = 0
                if read(signals, &signal, MemoryLayout<CInt>.size) == MemoryLayout<CInt>.size {
                    if let exit = self.handle(signal: signal) {
                        self.sockets.closeAll()
                        self.status.remove()
                        return exit
                    }
                }
            }
            if let restartAt = self.restartAt, restartAt <= Date(), !self.stopping {
                self.restartAt = nil
                self.spawn()
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
            guard self.serverPid > 0 else {
                return 0
            }
            kill(self.serverPid, SIGTERM)
        case SIGHUP:
            if self.serverPid > 0 {
                kill(self.serverPid, SIGHUP)
            }
        case SIGCHLD:
            return self.reap()
        default:
            break
        }
        return nil
    }

    /// Collects the server if it ended: logs how, and schedules its replacement (or ends the runner).
    private mutating func reap() -> Int32? {
        guard self.serverPid > 0 else {
            return nil
        }
        var status: Int32 = 0
        let pid = waitpid(self.serverPid, &status, WNOHANG)
        guard pid == self.serverPid else {
            return nil
        }
        self.serverPid = 0
        self.drainServerOutput()
        let cause = Self.describe(status: status)
        if self.stopping {
            self.logger.info("server stopped", metadata: ["p8.server.exit": "\(cause)"])
            return 0
        }
        // A first server that never got ready (a config it rejects, a certificate it cannot use) would fail
        // the same way again: the runner ends with its status, as the single process did.
        if !self.printedReady {
            self.logger.error("the server did not start", metadata: ["p8.server.exit": "\(cause)"])
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return code == 0 ? 1 : code
        }
        let ran = Date().timeIntervalSince(self.serverStarted)
        if ran >= Self.goodRun {
            self.backoff = 0
        }
        self.logger.error(
            "server ended; starting a new one",
            metadata: [
                "p8.server.pid": "\(pid)", "p8.server.exit": "\(cause)",
                "p8.server.ran_seconds": "\(String(format: "%.1f", ran))", "p8.restart_in": "\(self.backoff)",
            ]
        )
        self.status.serverEnded(cause: cause)
        self.restartAt = Date().addingTimeInterval(self.backoff)
        self.backoff = self.backoff == 0 ? Self.firstBackoff : min(Self.maxBackoff, self.backoff * 2)
        return nil
    }

    private mutating func spawn() {
        var pipeFds: [CInt] = [0, 0]
        // Only this thread spawns, so no other child can inherit the pipe before it is close-on-exec.
        guard pipe(&pipeFds) == 0, Self.closeOnExec(pipeFds[0]), Self.closeOnExec(pipeFds[1]) else {
            self.logger.error("pipe: \(String(cString: strerror(errno)))")
            self.restartAt = Date().addingTimeInterval(Self.maxBackoff)
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
        let executable = "/proc/self/exe"
        let arguments = [CommandLine.arguments[0]] + self.serverArguments
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp {
                free(pointer)
            }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(pipeFds[1])
        guard result == 0 else {
            close(pipeFds[0])
            self.logger.error("cannot start the server: \(String(cString: strerror(result)))")
            self.restartAt = Date().addingTimeInterval(max(Self.firstBackoff, self.backoff))
            return
        }
        if self.readyPipe >= 0 {
            close(self.readyPipe)
        }
        self.readyPipe = pipeFds[0]
        self.readyBuffer = []
        self.serverPid = pid
        self.serverStarted = Date()
        self.status.serverStarted(pid: pid)
        self.logger.info("server started", metadata: ["p8.server.pid": "\(pid)"])
    }

    /// Reads what the server wrote on stdout: the first readiness line of this runner is printed, later
    /// servers' readiness lines are not (scripts read exactly one); other lines pass through.
    private mutating func readServerOutput() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = read(self.readyPipe, &chunk, chunk.count)
        if count <= 0 {
            close(self.readyPipe)
            self.readyPipe = -1
            return
        }
        self.readyBuffer += chunk[0..<count]
        while let newline = self.readyBuffer.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: self.readyBuffer[..<newline], as: UTF8.self)
            self.readyBuffer.removeSubrange(...newline)
            if line.hasPrefix("p8 ready") {
                self.status.serverReady()
                if self.printedReady {
                    continue
                }
                self.printedReady = true
            }
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    private mutating func drainServerOutput() {
        while self.readyPipe >= 0 {
            var fds = [pollfd(fd: self.readyPipe, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, 0) > 0 else {
                return
            }
            self.readServerOutput()
        }
    }

    static func describe(status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 {
            return "exit status \((status >> 8) & 0xff)"
        }
        return "killed by \(Self.name(signal))" + ((status & 0x80) != 0 ? " (core dumped)" : "")
    }

    static func name(_ signal: CInt) -> String {
        let names: [CInt: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
            SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV",
            SIGPIPE: "SIGPIPE", SIGTERM: "SIGTERM",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
