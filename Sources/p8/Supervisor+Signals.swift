import Foundation
import Glibc

// The runner's signals (taken by a thread of their own and passed to the loop on a pipe), and how a server's end is
// described in the log and the status file.
extension Supervisor {
    /// Signals handled by the loop; blocked before any thread starts so that only the signalfd sees them.
    static let handledSignals: [CInt] = [SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGUSR2]

    static func blockSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in Self.handledSignals {
            sigaddset(&set, signal)
        }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// A pipe on which a thread of its own writes each handled signal as it arrives (`sigwait`), so that the
    /// loop waits on signals and on the servers' output with one `poll`.
    static func signalPipe() -> CInt? {
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

    static func closeOnExec(_ fd: CInt) -> Bool {
        fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
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
            SIGPIPE: "SIGPIPE", SIGTERM: "SIGTERM", SIGUSR2: "SIGUSR2",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
