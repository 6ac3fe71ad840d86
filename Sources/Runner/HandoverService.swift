import Foundation
import Glibc
import Logging
import Proxy
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Where a server hands its connections over, as the runner tells it (`P8_HANDOVER_SOCKET`,
/// `P8_HANDOVER_SUCCESSOR`).
package struct HandoverSettings: Sendable {
    /// The hand-over socket, in the runner's rundir.
    package var socketPath: String
    /// This server replaces a running one: it takes that one's connections before it opens the database.
    package var isSuccessor: Bool

    package init(socketPath: String, isSuccessor: Bool) {
        self.socketPath = socketPath
        self.isSuccessor = isSuccessor
    }

    /// The settings the runner passed in the environment; nil for a server without a runner.
    package static func fromEnvironment() -> HandoverSettings? {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment["P8_HANDOVER_SOCKET"], !path.isEmpty else { return nil }
        return HandoverSettings(socketPath: path, isSuccessor: environment["P8_HANDOVER_SUCCESSOR"] == "1")
    }
}

/// The old server's side of a restart without dropped connections: on SIGUSR2 (which the runner sends once the new
/// server listens on the hand-over socket) it hands its client connections over, then shuts down as on SIGTERM.
/// The socket stays open until this process exits: its end tells the new server that the database and the ZeroMQ
/// sockets are free.
final class HandoverService: Service {
    let settings: HandoverSettings
    let proxy: ProxyServer
    let logger: Logger
    /// The socket, kept open until the process exits.
    private let kept = Mutex<HandoverSocket?>(nil)

    init(settings: HandoverSettings, proxy: ProxyServer, logger: Logger) {
        self.settings = settings
        self.proxy = proxy
        self.logger = logger
    }

    func run() async throws {
        let requests = await UnixSignalsSequence(trapping: .sigusr2)
        var handedOver = false
        // Runs until the shutdown (a service that returns would end the group at once).
        for await _ in requests.cancelOnGracefulShutdown() where !handedOver {
            handedOver = await self.handOver()
        }
    }

    /// Returns true once the connections are handed over (the server is then shutting down).
    private func handOver() async -> Bool {
        let started = ContinuousClock.now
        let socket: HandoverSocket
        do {
            socket = try HandoverSocket.connect(path: self.settings.socketPath)
        } catch {
            self.logger.error("no hand-over: \(error); still serving")
            return false
        }
        do {
            let summary = try await self.proxy.handOver(over: socket)
            self.logger.info(
                "connections handed over to the new server",
                metadata: [
                    "p8.handover": "\(summary)",
                    "p8.handover.seconds": "\(String(format: "%.3f", (ContinuousClock.now - started).seconds))",
                ]
            )
        } catch {
            self.logger.error("hand-over cut short: \(error)")
        }
        self.kept.withLock { $0 = socket }
        // Shut down as on SIGTERM: what stayed here ends, the store and the ZeroMQ sockets close.
        kill(getpid(), SIGTERM)
        return true
    }
}

/// The new server's side: listens on the hand-over socket, says so (the runner then signals the old server), and
/// takes the old server's connections; returns once the old server has exited.
enum HandoverReceiver {
    /// How long the old server has to connect once told, and to exit once it has handed over.
    static let connectTimeout = 30.0
    static let exitTimeout = 60.0

    static func receive(
        _ settings: HandoverSettings,
        logger: Logger,
        onListening: @escaping @Sendable () -> Void
    ) async throws -> [TakenOverConnection] {
        let listener: HandoverListener
        do {
            listener = try HandoverSocket.listen(path: settings.socketPath)
        } catch {
            throw RunnerError("cannot take over the running server's connections: \(error)")
        }
        onListening()
        let result: Result<[TakenOverConnection], HandoverError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    returning: Result { () throws(HandoverError) in
                        try Self.receive(on: listener, logger: logger)
                    }
                )
            }
        }
        switch result {
        case .success(let connections):
            return connections
        case .failure(let error):
            throw RunnerError("cannot take over the running server's connections: \(error)")
        }
    }

    private static func receive(
        on listener: HandoverListener,
        logger: Logger
    ) throws(HandoverError)
        -> [TakenOverConnection]
    {
        let socket = try listener.accept(timeout: Self.connectTimeout)
        var connections: [TakenOverConnection] = []
        receiving: while true {
            switch try socket.receive() {
            case .connection(let descriptor, let payload):
                connections.append(TakenOverConnection(descriptor: descriptor, payload: payload))
            case .end:
                break receiving
            case .closed:
                logger.warning("the previous server ended before it had handed every connection over")
                return connections
            }
        }
        // Wait for the old server's exit (its end of the socket closes): then the database is ours.
        var poller = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(Self.exitTimeout)
        while deadline.timeIntervalSinceNow > 0 {
            let ready = poll(&poller, 1, Int32(deadline.timeIntervalSinceNow * 1000))
            if ready < 0 && errno == EINTR { continue }
            if ready > 0, case .closed = (try? socket.receive()) ?? .closed {
                return connections
            }
            if ready == 0 { break }
        }
        logger.warning("the previous server has not exited; starting anyway")
        return connections
    }
}
