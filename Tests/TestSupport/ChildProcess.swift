package import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, its stdin, stdout and stderr on pipes.
///
/// Not `Foundation.Process`: on Linux its `run()` reads `/proc/self/fd` with a 256-byte over-read that crashes
/// the test process now and then (swift-corelibs-foundation#5472, fixed after Swift 6.3.1); full test runs here
/// crashed in it. Instead, every descriptor of the test process is made close-on-exec before the spawn, so the
/// child inherits only its three pipes.
package final class ChildProcess: Sendable {
    package let pid: pid_t
    package let executableName: String
    package let stdout: FileHandle
    package let stderr: FileHandle
    /// The write end of the child's stdin, when one was asked for (else the child reads /dev/null).
    package let stdin: FileHandle?
    private let exitStatus = Mutex<Int32?>(nil)

    package struct SpawnError: Error, CustomStringConvertible {
        package var description: String
    }

    /// One spawn at a time, so that no spawn inherits the pipes of another made meanwhile.
    private static let spawnLock = Mutex(())

    private init(pid: pid_t, executableName: String, stdout: FileHandle, stderr: FileHandle, stdin: FileHandle?) {
        self.pid = pid
        self.executableName = executableName
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
    }

    /// Starts `executable` with `arguments` and `environment` (by default this process's), in `directory` when
    /// given (through `env -C`).
    package static func spawn(
        _ executable: URL,
        arguments: [String],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String? = nil,
        withStdin: Bool = false
    ) throws -> ChildProcess {
        try self.spawnLock.withLock { _ in
            try self.spawnLocked(
                executable,
                arguments: arguments,
                environment: environment,
                directory: directory,
                withStdin: withStdin
            )
        }
    }

    private static func spawnLocked(
        _ executable: URL,
        arguments: [String],
        environment: [String: String],
        directory: String?,
        withStdin: Bool
    ) throws -> ChildProcess {
        var argv = [executable.path] + arguments
        var path = executable.path
        if let directory {
            path = "/usr/bin/env"
            argv = ["env", "-C", directory] + argv
        }
        let out = try Self.pipe()
        let err = try Self.pipe()
        let input = withStdin ? try Self.pipe() : nil
        Self.markDescriptorsCloseOnExec()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out.write, 1)
        posix_spawn_file_actions_adddup2(&actions, err.write, 2)
        if let input {
            posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        let environmentLines = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = Self.withCStrings(argv) { argvPointers in
            Self.withCStrings(environmentLines) { environmentPointers in
                posix_spawn(&pid, path, &actions, nil, argvPointers, environmentPointers)
            }
        }
        close(out.write)
        close(err.write)
        if let input {
            close(input.read)
        }
        guard result == 0 else {
            close(out.read)
            close(err.read)
            if let input { close(input.write) }
            throw SpawnError(description: "cannot start \(path): \(String(cString: strerror(result)))")
        }
        return ChildProcess(
            pid: pid,
            executableName: executable.lastPathComponent,
            stdout: FileHandle(fileDescriptor: out.read, closeOnDealloc: true),
            stderr: FileHandle(fileDescriptor: err.read, closeOnDealloc: true),
            stdin: input.map { FileHandle(fileDescriptor: $0.write, closeOnDealloc: true) }
        )
    }

    private static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard Glibc.pipe(&fds) == 0 else {
            throw SpawnError(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        return (fds[0], fds[1])
    }

    /// Sets `FD_CLOEXEC` on every open descriptor above stderr (sockets of servers the tests run, files), read
    /// from `/proc/self/fd` without copying whole `d_name` fields.
    private static func markDescriptorsCloseOnExec() {
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        let skip = dirfd(directory)
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19
        while let entry = readdir(directory) {
            let name = String(
                cString: UnsafeRawPointer(entry).advanced(by: nameOffset).assumingMemoryBound(to: CChar.self)
            )
            guard let fd = Int32(name), fd > 2, fd != skip else { continue }
            _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
        }
    }

    private static func withCStrings<R>(
        _ strings: [String],
        _ body: ([UnsafeMutablePointer<CChar>?]) -> R
    ) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer {
            for pointer in pointers {
                free(pointer)
            }
        }
        return body(pointers)
    }

    package func signal(_ signal: Int32) {
        kill(self.pid, signal)
    }

    /// Whether the child still runs (reaps it once it has exited).
    package var isRunning: Bool {
        self.exitStatus.withLock { exitStatus in
            guard exitStatus == nil else { return false }
            var status: Int32 = 0
            if waitpid(self.pid, &status, WNOHANG) == self.pid {
                exitStatus = status
                return false
            }
            return true
        }
    }

    /// The exit status, or the number of the signal that ended it (as `Process.terminationStatus`).
    package var terminationStatus: Int32 {
        let status = self.exitStatus.withLock { $0 } ?? 0
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : signal
    }

    /// Waits (bounded) for the child to exit and returns ``terminationStatus``; kills it if the time runs out.
    package func waitForExit(timeout: Duration = defaultWait) async throws -> Int32 {
        let exited = try await eventually(timeout: timeout) { !self.isRunning }
        guard exited else {
            self.signal(SIGKILL)
            throw SpawnError(description: "\(self.executableName) did not exit within \(timeout)")
        }
        return self.terminationStatus
    }

    /// A built product of this package (p8, p8ctl, p8-store-bench), beside the test bundle.
    package static func product(_ name: String) -> URL? {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // Swift Testing may run the bundle from inside the .xctest directory.
        for directory in [products, products.deletingLastPathComponent()] {
            let executable = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: executable.path) {
                return executable
            }
        }
        return nil
    }
}
