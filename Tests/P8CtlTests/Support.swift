import Foundation
import GRIP
import Logging
import P8TestSupport
import Store
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let testLogger = Logger(label: "p8ctl.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A fixed "now" for the fixtures: 2026-11-24 21:00:00 UTC.
let fixtureTime = Date(timeIntervalSince1970: 1_795_554_000)

/// A database written by P-8's store, as the server writes it.
struct Fixture {
    let directory: TemporaryDirectory
    let path: String
    let store: ChannelStore

    /// Creates `p8.sqlite` in a fresh directory.
    static func make() async throws -> Fixture {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let store = try await ChannelStore.open(
            configuration: StoreConfiguration(databaseFile: path),
            logger: testLogger
        )
        return Fixture(directory: directory, path: path, store: store)
    }

    /// Appends `count` items to `channel` with ids `{prefix}1`... published a second apart from `start`.
    @discardableResult
    func publish(
        _ channel: String,
        count: Int,
        idPrefix: String? = nil,
        start: Date = fixtureTime,
        content: (Int) -> String = { "{\"http-stream\":{\"content\":\"item \($0)\\n\"}}" }
    ) async throws -> [AppendResult] {
        let base =
            try await self.store.channelSummaries(prefix: channel).first { $0.name == channel }?.lastSequence ?? 0
        let items = (1...count).map { offset in
            let number = Int(base) + offset
            return NewItem(
                channel: channel,
                id: idPrefix.map { "\($0)\(number)" },
                prevId: idPrefix.flatMap { number > 1 ? "\($0)\(number - 1)" : nil },
                formats: Data(content(number).utf8),
                publishedAt: start.addingTimeInterval(Double(offset - 1))
            )
        }
        return try await self.store.append(items)
    }
}

/// What a finished `p8ctl` run printed and its exit status.
struct CtlResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var stdoutLines: [String] { self.stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }

    /// The stdout parsed as one JSON document.
    func json() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(self.stdout.utf8), options: [.fragmentsAllowed])
    }

    /// Each stdout line parsed as JSON (NDJSON).
    func jsonLines() throws -> [[String: Any]] {
        try self.stdoutLines.map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw CtlTestError(description: "not a JSON object: \(line)")
            }
            return object
        }
    }

    var description: String { "status \(self.status)\nstdout:\n\(self.stdout)\nstderr:\n\(self.stderr)" }
}

struct CtlTestError: Error, CustomStringConvertible {
    var description: String
}

/// A built executable of the package (`p8ctl`, `p8`) beside the test bundle.
func builtExecutable(_ name: String) throws -> URL {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // Swift Testing may run the bundle from inside the .xctest directory.
    for directory in [products, products.deletingLastPathComponent()] {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
    }
    throw CtlTestError(description: "\(name) not built beside the tests (looked in \(products.path))")
}

/// Reads a file handle to its end on a thread of its own (not on the cooperative pool).
private func readToEnd(_ handle: FileHandle) async -> Data {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(returning: handle.readDataToEndOfFile())
        }
    }
}

/// Runs `p8ctl` with `arguments` in `directory` (times in UTC), `input` on its stdin, and waits for it to exit.
func ctl(_ arguments: [String], in directory: String? = nil, input: [UInt8]? = nil) async throws -> CtlResult {
    let process = try CtlProcess.start(arguments, in: directory, input: input)
    async let stdout = readToEnd(process.child.stdout)
    async let stderr = readToEnd(process.child.stderr)
    let status = try await process.waitForExit()
    return CtlResult(
        status: status,
        stdout: String(decoding: await stdout, as: UTF8.self),
        stderr: String(decoding: await stderr, as: UTF8.self)
    )
}

/// A running `p8ctl` (for `tail`), or `p8`.
final class CtlProcess: Sendable {
    let child: ChildProcess
    private let seen = Mutex<[UInt8]>([])

    private init(child: ChildProcess) {
        self.child = child
    }

    static func start(
        _ arguments: [String],
        in directory: String? = nil,
        executable: String = "p8ctl",
        input: [UInt8]? = nil
    ) throws
        -> CtlProcess
    {
        var environment = ProcessInfo.processInfo.environment
        environment["TZ"] = "UTC"
        let child = try ChildProcess.spawn(
            try builtExecutable(executable),
            arguments: arguments,
            environment: environment,
            directory: directory,
            withStdin: input != nil
        )
        if let stdin = child.stdin, let input {
            stdin.write(Data(input))
            try stdin.close()
        }
        return CtlProcess(child: child)
    }

    func signal(_ signal: Int32) {
        self.child.signal(signal)
    }

    /// Waits until stdout has `count` lines (or `timeout` passes) and returns every line read so far.
    func readLines(atLeast count: Int, timeout: Duration = defaultWait) async throws -> [String] {
        try await self.readLines(timeout: timeout) { $0.count >= count }
    }

    /// Waits until the lines read from stdout satisfy `done` (or `timeout` passes) and returns them.
    func readLines(timeout: Duration = defaultWait, until done: ([String]) -> Bool) async throws -> [String] {
        let descriptor = self.child.stdout.fileDescriptor
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        let read = {
            self.seen.withLock { seen in
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = Glibc.read(descriptor, &buffer, buffer.count)
                    guard count > 0 else { break }
                    seen += buffer[0..<count]
                }
                return String(decoding: seen, as: UTF8.self).split(separator: "\n").map(String.init)
            }
        }
        _ = try await eventually(timeout: timeout) { done(read()) }
        return read()
    }

    func waitForExit() async throws -> Int32 {
        try await self.child.waitForExit()
    }
}
