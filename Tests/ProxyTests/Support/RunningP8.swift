import Foundation
import GRIP
import Logging
import P8TestSupport
import Runner
import Synchronization

/// The signing key every test config uses.
let testSigningKey = "proxy-tests-signing-key"

/// Starts a real P-8 (what `p8` starts) on 127.0.0.1 and an ephemeral port with `routes` and extra config
/// lines, runs `body` with its client port, then stops it.
func withRunningP8(
    routes: [String],
    config extraConfig: String = "",
    _ body: (Int) async throws -> Void
) async throws {
    try await withRunningP8Server(routes: routes, config: extraConfig) { p8 in
        try await body(p8.httpPort)
    }
}

/// A P-8 started by ``withRunningP8Server(routes:config:_:)``.
struct RunningP8: Sendable {
    /// The client-facing proxy port.
    var httpPort: Int
    /// The HTTP control API (publish) port.
    var publishPort: Int
    /// The SQLite database file the server writes.
    var databasePath: String
    /// The Prometheus endpoint's port, when the config sets `prometheus_port`.
    var metricsPort: Int? = nil
    /// The TLS client ports (`https_ports`).
    var httpsPorts: [Int] = []
}

/// As ``withRunningP8(routes:config:_:)``, with every port of the server (client and publish API, both
/// ephemeral) and its database. With `routesFile`, the routes come from that file (watched) instead of `routes`.
///
/// `prepare` runs with the config directory before the server starts (e.g. to put certificates there). With
/// `log`, the server logs at debug level into it.
func withRunningP8Server(
    routes: [String] = ["* 127.0.0.1:1"],
    routesFile: String? = nil,
    config extraConfig: String = "",
    log: CapturedLog? = nil,
    prepare: (URL) throws -> Void = { _ in },
    _ body: (RunningP8) async throws -> Void
) async throws {
    let temporary = try TemporaryDirectory(prefix: "p8-test")
    let directory = temporary.url
    try prepare(directory)
    let text = """
        [global]
        rundir=run
        [runner]
        http_port=127.0.0.1:0
        [proxy]
        routesfile=\(routesFile ?? "routes")
        sig_iss=pushpin
        sig_key=\(testSigningKey)
        x_forwarded_for=append
        [handler]
        push_in_http_port=0
        push_in_spec=
        push_in_sub_specs=
        command_spec=
        \(extraConfig)
        """
    let configuration = try P8Configuration.parse(
        text: text,
        configDirectory: directory.path,
        readFile: { _ in nil }
    )
    let server = P8Server(
        configuration: configuration,
        overrides: P8Server.Overrides(routeLines: routesFile == nil ? routes : nil),
        logger: log?.logger ?? Logger(label: "p8-test", factory: { _ in SwiftLogNoOpLogHandler() })
    )
    let (readiness, continuation) = AsyncStream<P8Server.Readiness>.makeStream()
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            // Ends the readiness stream if p8 stops before it is ready, so the test sees why instead of waiting.
            defer { continuation.finish() }
            try await server.run { continuation.yield($0) }
        }
        var iterator = readiness.makeAsyncIterator()
        guard let ready = await iterator.next() else {
            try await group.waitForAll()
            throw RunnerError("p8 stopped before it was ready, without an error")
        }
        guard let port = ready.http.first?.port else {
            throw RunnerError("p8 did not become ready")
        }
        let p8 = RunningP8(
            httpPort: port,
            publishPort: ready.publish.port,
            databasePath: configuration.store.databaseFile,
            metricsPort: ready.metrics?.port,
            httpsPorts: ready.https.map(\.port)
        )
        do {
            try await body(p8)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}

/// Runs `body` with a started ``TestBackend`` and stops it afterwards.
func withTestBackend(tls: Bool = false, _ body: (TestBackend) async throws -> Void) async throws {
    let backend = try await TestBackend.start(tls: tls)
    do {
        try await body(backend)
    } catch {
        await backend.stop()
        throw error
    }
    await backend.stop()
}

/// The messages a server logged (see ``withRunningP8Server(routes:routesFile:config:log:prepare:_:)``), so that a
/// test can wait for something to have happened inside it.
final class CapturedLog: Sendable {
    private let entries = Mutex<[(message: String, metadata: String)]>([])

    var logger: Logger {
        var logger = Logger(label: "p8-test") { _ in Handler(log: self) }
        logger.logLevel = .debug
        return logger
    }

    /// How many messages so far are `message`.
    func count(of message: String) -> Int {
        self.entries.withLock { $0.count { $0.message == message } }
    }

    /// Every message so far with its metadata, one a line (to show with a failure).
    var text: String {
        self.entries.withLock { $0.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n") }
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let metadata = self.metadata.merging(event.metadata ?? [:]) { $1 }
            self.log.entries.withLock { $0.append((event.message.description, "\(metadata)")) }
        }
    }
}
