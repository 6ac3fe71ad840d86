import ArgumentParser
import Foundation
import GRIP
import Glibc
import Logging
import Proxy
import Runner
import Synchronization

/// `p8`: runs P-8 in the foreground until SIGINT or SIGTERM: the runner, which binds the listening sockets and
/// supervises the server process (the same binary with `--server`), or with `--no-supervisor` the server alone.
@main
struct P8Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p8",
        abstract: "P-8: a durable realtime reverse proxy that speaks GRIP.",
        discussion: """
            Reads a pushpin.conf-style config file and a Pushpin routes file. Without --config, uses \
            ./p-8.conf if it exists, else config/p-8.conf.example. Prints one line, "p8 ready http=...", \
            on stdout once it listens.

            p8 is the runner: it binds the listening sockets and runs the server as a child process that \
            inherits them, restarting it if it dies (new connections wait in the listen backlog meanwhile). \
            SIGTERM or SIGINT stops the server gracefully, then the runner; SIGHUP is passed to the server; \
            SIGUSR2 (or p8ctl restart) restarts the server with the config read again, handing every held \
            connection it can over to the new one. \
            --no-supervisor runs the server alone in this process (for systemd or another supervisor).
            """
    )

    @Option(name: .long, help: "The config file.")
    var config: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Listen on this [addr:]port instead of [runner] http_port (repeatable).",
            valueName: "[addr:]port"
        )
    )
    var port: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp("Use this route line instead of the routes file (repeatable).", valueName: "line")
    )
    var route: [String] = []

    @Option(name: .long, help: "Log level: 0 error, 1 warning, 2 info, 3 debug (default: [runner] log_level).")
    var loglevel: Int?

    @Flag(name: .long, help: "Log at debug level (same as --loglevel 3).")
    var verbose = false

    @Flag(name: .long, help: "Run the server alone in this process, with no runner supervising it.")
    var noSupervisor = false

    /// The server process started by the runner (it inherits the listening sockets).
    @Flag(name: .long, help: .hidden)
    var server = false

    func run() throws {
        if !self.server && !self.noSupervisor {
            // Before any thread starts: the runner's loop takes these signals from a signalfd.
            Supervisor.blockSignals()
        } else if self.server {
            Self.dieWithRunner()
        }
        let configFile = try self.configFile()
        let configuration: P8Configuration
        do {
            configuration = try P8Configuration.load(configFile: configFile)
        } catch {
            throw ValidationError("\(error)")
        }
        let listeners = try self.port.map { text in
            do {
                return try ListenAddress(parsing: text)
            } catch {
                throw ValidationError("--port \(text): \(error)")
            }
        }
        let level = Logger.Level(pushpinLevel: self.verbose ? 3 : (self.loglevel ?? configuration.runner.logLevel))
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: self.server ? "p8.server" : "p8")
        if !self.server && !self.noSupervisor {
            try self.supervise(configuration: configuration, listeners: listeners, logger: logger)
            return
        }
        logger.info("using config \(configuration.configFile)")
        let server = P8Server(
            configuration: configuration,
            overrides: P8Server.Overrides(
                listeners: listeners.isEmpty ? nil : listeners,
                routeLines: self.route.isEmpty ? nil : self.route
            ),
            handover: self.server ? HandoverSettings.fromEnvironment() : nil,
            logger: logger
        )
        let failure = Mutex<(any Error)?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await server.run {
                    FileHandle.standardOutput.write(Data((P8Server.handoverReadyLine + "\n").utf8))
                } onReady: { readiness in
                    // Unbuffered: whoever started p8 may be waiting on a pipe for this line.
                    FileHandle.standardOutput.write(Data((readiness.line + "\n").utf8))
                }
            } catch {
                failure.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = failure.withLock({ $0 }) {
            if let error = error as? RunnerError {
                logger.error("\(error)")
                throw ExitCode.failure
            }
            throw error
        }
    }

    /// The runner: binds every listening socket, then starts and supervises the server until SIGTERM or SIGINT.
    private func supervise(configuration: P8Configuration, listeners: [ListenAddress], logger: Logger) throws {
        for warning in RunnerServices.report(configuration.runner.services) {
            logger.warning("\(warning)")
        }
        var sockets = ListenSockets()
        do {
            for (index, address) in (listeners.isEmpty ? configuration.runner.httpListeners : listeners).enumerated() {
                try sockets.bind(address, role: "http.\(index)")
            }
            for (index, address) in configuration.runner.tls.listeners.enumerated() {
                try sockets.bind(address, role: "https.\(index)")
            }
            let handler = configuration.handler
            try sockets.bind(ListenAddress(host: handler.pushInHTTPAddr, port: handler.pushInHTTPPort), role: "publish")
            if let metrics = configuration.metrics.listen {
                try sockets.bind(metrics, role: "metrics")
            }
        } catch {
            sockets.closeAll()
            logger.error("\(error)")
            throw ExitCode.failure
        }
        var supervisor = Supervisor(
            sockets: sockets,
            serverArguments: Array(CommandLine.arguments.dropFirst()) + ["--server"],
            status: RunnerStatus(rundir: configuration.global.rundir),
            rundir: configuration.global.rundir,
            logger: logger
        )
        let status = supervisor.run()
        if status != 0 {
            throw ExitCode(status)
        }
    }

    /// The server dies with its runner (SIGKILL when the runner's main thread ends), so that killing the runner
    /// never leaves a server holding the ports; one whose runner is already gone exits.
    private static func dieWithRunner() {
        // PR_SET_PDEATHSIG (1, <sys/prctl.h>, which Glibc's module map leaves out).
        _ = linuxPrctl(1, UInt(SIGKILL))
        if let runner = ProcessInfo.processInfo.environment["P8_RUNNER_PID"].flatMap(Int32.init), getppid() != runner {
            Glibc.exit(1)
        }
    }
}

/// `prctl(2)` with one argument (the C function is variadic; its integer arguments pass the same way).
@_silgen_name("prctl")
private func linuxPrctl(_ option: CInt, _ argument: UInt) -> CInt

extension P8Command {

    private func configFile() throws -> String {
        if let config = self.config {
            return config
        }
        if let found = P8Configuration.findDefaultConfigFile() {
            return found
        }
        throw ValidationError("no config file: pass --config FILE, or create ./p-8.conf")
    }
}
