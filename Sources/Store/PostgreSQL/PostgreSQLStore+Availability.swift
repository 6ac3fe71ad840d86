import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Whether this node can reach the PostgreSQL server, as its last commit found.
struct ServerAvailability: Sendable {
    /// The error of the commit that found the server gone, while it is: appends fail at once with it.
    var lost: StoreError?
    /// The task that probes the server with back-off until it answers again.
    var probe: Task<Void, Never>?
}

// A server lost while running. The first commit that fails for want of the server (``StoreError/Code/unreachable``:
// refused connections, connections the server closed, the pool's circuit breaker, a commit past its deadline) marks
// it lost; from then on appends fail at once with that error (publishers are answered 503, never 200, and nothing
// waits for a deadline) while one probe connects again with back-off (100 ms doubling to 5 s). Once a probe's
// `SELECT 1` succeeds, appends go to the pool again, and the follower compares every channel with the database, so
// what other nodes committed meanwhile is delivered. Held clients are not touched: they wait for the next item.
extension PostgreSQLStore {
    static let firstProbeDelay = Duration.milliseconds(100)
    static let maxProbeDelay = Duration.seconds(5)

    /// The error appends fail with while the server is lost, if it is.
    var lostServerError: StoreError? {
        self.availability.withLock { $0.lost }
    }

    /// Whether the server answered this node's last attempt (false between a lost server and a successful probe).
    package var isServerReachable: Bool { self.lostServerError == nil }

    /// Notes a commit's failure: an outage marks the server lost and starts the probe.
    func noteFailure(_ error: any Error) {
        guard let error = error as? StoreError, error.code == .unreachable else { return }
        let starts = self.availability.withLock { state -> Bool in
            if state.lost != nil {
                return false
            }
            state.lost = error
            return true
        }
        guard starts else { return }
        self.logger.warning(
            "PostgreSQL server lost: publishes are refused until it answers again",
            metadata: ["p8.store.url": "\(self.url)", "error": "\(error)"]
        )
        let probe = Task { await self.probeUntilReachable() }
        self.availability.withLock { $0.probe = probe }
    }

    /// Connects with back-off until the server answers a query, then marks it reachable again.
    private func probeUntilReachable() async {
        var delay = Self.firstProbeDelay
        var attempts = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: delay)
            attempts += 1
            do {
                try await self.probe()
                break
            } catch {
                delay = min(delay * 2, Self.maxProbeDelay)
                if let error = error as? StoreError {
                    self.availability.withLock { $0.lost = error }
                }
            }
        }
        if Task.isCancelled {
            return
        }
        self.availability.withLock { state in
            state.lost = nil
            state.probe = nil
        }
        self.follow.withLock { $0.needsFullCheck = true }
        self.wakeFollower.yield()
        self.resumeCommits()
        self.logger.notice(
            "PostgreSQL server reachable again",
            metadata: ["p8.store.url": "\(self.url)", "p8.store.probes": "\(attempts)"]
        )
    }

    /// One probe: a connection of its own (the pool's back-off grows to a minute during a long outage), then a
    /// query through the pool; a pool that still fails although the server answers is replaced by a new one.
    private func probe() async throws {
        try await Self.describingErrors(url: self.url) {
            let connection = try await PostgresConnection.connect(
                configuration: self.connectionConfiguration,
                id: 0,
                logger: self.logger
            )
            defer { Task { try? await connection.close() } }
            try await connection.query("SELECT 1", logger: self.logger)
        }
        let client = self.client
        do {
            try await Self.withDeadline(.seconds(2), url: self.url) {
                try await Self.describingErrors(url: self.url) {
                    _ = try await client.query("SELECT 1", logger: self.logger)
                }
            }
            return
        } catch {
            self.logger.info("the connection pool has not recovered: replacing it", metadata: ["error": "\(error)"])
        }
        let replacement = PostgresClient(configuration: self.clientConfiguration, backgroundLogger: self.logger)
        let run = Task { await replacement.run() }
        let old = self.pool.withLock { pool in
            defer { pool = (replacement, run) }
            return pool.run
        }
        old.cancel()
        try await Self.withDeadline(.seconds(5), url: self.url) {
            try await Self.describingErrors(url: self.url) {
                _ = try await replacement.query("SELECT 1", logger: self.logger)
            }
        }
    }
}
