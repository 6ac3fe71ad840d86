import ArgumentParser
import Foundation
import GRIP
import Logging
import Proxy
import Runner

/// `p8`: runs P-8 in the foreground until SIGINT or SIGTERM.
@main
struct P8Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p8",
        abstract: "P-8: a durable realtime reverse proxy that speaks GRIP.",
        discussion: """
            Reads a pushpin.conf-style config file and a Pushpin routes file. Without --config, uses \
            ./p-8.conf if it exists, else config/p-8.conf.example. Prints one line, "p8 ready http=...", \
            on stdout once it listens.
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

    func run() async throws {
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
        let logger = Logger(label: "p8")
        logger.info("using config \(configuration.configFile)")
        let server = P8Server(
            configuration: configuration,
            overrides: P8Server.Overrides(
                listeners: listeners.isEmpty ? nil : listeners,
                routeLines: self.route.isEmpty ? nil : self.route
            ),
            logger: logger
        )
        do {
            try await server.run { readiness in
                // Unbuffered: whoever started p8 may be waiting on a pipe for this line.
                FileHandle.standardOutput.write(Data((readiness.line + "\n").utf8))
            }
        } catch let error as RunnerError {
            logger.error("\(error)")
            throw ExitCode.failure
        }
    }

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
