import Foundation
package import GRIP
package import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The store on PostgreSQL, shared by several P-8 nodes: one log per channel, one epoch per database, sequences
/// allocated atomically across nodes (an append transaction locks the channel's row, `FOR UPDATE`, in name order),
/// the reordering buffer's state in the channel row and `pending_item`, retention run by one node at a time (an
/// advisory lock), and hold records per node instance.
///
/// Appends are group-committed: while one transaction runs, the appends that arrive queue up and share the next.
/// Nothing is cached across transactions, since other nodes append too: every transaction reads the rows it locks.
package final class PostgreSQLStore: ChannelLogStore {
    package let epoch: String
    /// The server and database (without password), for messages.
    package let url: PostgreSQLURL
    /// The `[store]` configuration (retention, `message_wait`).
    package let configuration: StoreConfiguration
    /// Every read goes to the database (other nodes append too: there is no in-memory tail).
    package let readSources = ReadSources()

    /// The connection pool and the task that runs it; replaced when the pool does not recover after an outage
    /// (see PostgreSQLStore+Availability.swift).
    let pool: Mutex<(client: PostgresClient, run: Task<Void, Never>)>
    let clientConfiguration: PostgresClient.Configuration
    let connectionConfiguration: PostgresConnection.Configuration
    let logger: Logger
    /// The follower and the listener (see PostgreSQLStore+Follow.swift), when the store follows other nodes.
    private let followTasks = Mutex<[Task<Void, Never>]>([])
    let follow = Mutex(FollowState())
    let wakeFollower: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    let commitQueue = Mutex(PostgreSQLCommitQueue())
    let commitObserver = Mutex<CommitObserver?>(nil)
    /// Whether commits NOTIFY the other nodes (set once, at open).
    let notifies: Bool
    /// Whether the server was lost, and whether a probe runs (see PostgreSQLStore+Availability.swift).
    let availability = Mutex(ServerAvailability())
    /// The key of the advisory lock that lets one node at a time run retention.
    static let retentionLockKey: Int64 = 0x5038_0001

    private init(
        client: PostgresClient,
        clientConfiguration: PostgresClient.Configuration,
        connectionConfiguration: PostgresConnection.Configuration,
        runTask: Task<Void, Never>,
        url: PostgreSQLURL,
        epoch: String,
        configuration: StoreConfiguration,
        logger: Logger,
        notifies: Bool
    ) {
        self.pool = Mutex((client, runTask))
        self.clientConfiguration = clientConfiguration
        self.connectionConfiguration = connectionConfiguration
        (self.wakes, self.wakeFollower) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.url = url
        self.epoch = epoch
        self.configuration = configuration
        self.logger = logger
        self.notifies = notifies
    }

    deinit {
        self.close()
    }

    /// The current connection pool.
    var client: PostgresClient { self.pool.withLock { $0.client } }

    /// Where the database is: its URL without the password.
    package var location: String { self.url.description }

    /// Connects, applies the migrations not yet applied (one node at a time) and reads the epoch.
    ///
    /// - Throws: ``StoreError/Code/unreachable`` (one line: what failed and the server's reason) when the server
    ///   cannot be reached or refuses the login, ``StoreError/Code/newerDatabase`` for a database migrated by a
    ///   newer P-8.
    /// - Parameters:
    ///   - follows: Whether the observer also gets other nodes' items (a server's store); `p8ctl` does not need them.
    ///   - listens: Whether the follower is woken by other nodes' notifications (without, it relies on the periodic
    ///     comparison alone, as after missed notifications).
    ///   - followInterval: How often the follower compares every channel with the database, whatever the
    ///     notifications said.
    ///   - notifies: Whether commits send a NOTIFY to wake the other nodes up (off only to measure what the
    ///     wake-up buys: other nodes then see the items at their next periodic comparison).
    ///   - migrates: Whether to apply migrations; without (`p8ctl`), a database whose schema is missing or not this
    ///     build's is an error (see ``PostgreSQLMigrations/check(_:url:logger:)``).
    package static func open(
        url: PostgreSQLURL,
        configuration: StoreConfiguration,
        logger: Logger,
        follows: Bool = true,
        listens: Bool = true,
        followInterval: Duration = .seconds(1),
        migrates: Bool = true,
        notifies: Bool = true
    ) async throws -> PostgreSQLStore {
        var clientConfiguration = PostgresClient.Configuration(
            host: url.host,
            port: url.port,
            username: url.user,
            password: url.password,
            database: url.database,
            tls: url.requiresTLS ? .require(.makeClientConfiguration()) : .disable
        )
        clientConfiguration.options.connectTimeout = Duration.seconds(5)
        clientConfiguration.options.maximumConnections = 8
        var connectionConfiguration = PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.user,
            password: url.password,
            database: url.database,
            tls: url.requiresTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable
        )
        connectionConfiguration.options.connectTimeout = .seconds(5)
        // One attempt first: the pool retries for ever, but a server that is unreachable at start-up is an error.
        try await Self.describingErrors(url: url) {
            let probe = try await PostgresConnection.connect(
                configuration: connectionConfiguration,
                id: 0,
                logger: logger
            )
            try await probe.close()
        }
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        let runTask = Task { await client.run() }
        do {
            let epoch = try await Self.describingErrors(url: url) {
                if migrates {
                    try await PostgreSQLMigrations.migrate(client, url: url, logger: logger)
                } else {
                    try await PostgreSQLMigrations.check(client, url: url, logger: logger)
                }
                let rows = try await client.query("SELECT epoch FROM store WHERE id = 1", logger: logger)
                for try await epoch in rows.decode(String.self) {
                    return epoch
                }
                throw StoreError(
                    code: .corruptDatabase,
                    path: url.description,
                    message: "the database has no epoch row"
                )
            }
            logger.debug("store opened", metadata: ["p8.store.url": "\(url)", "p8.store.epoch": "\(epoch)"])
            let store = PostgreSQLStore(
                client: client,
                clientConfiguration: clientConfiguration,
                connectionConfiguration: connectionConfiguration,
                runTask: runTask,
                url: url,
                epoch: epoch,
                configuration: configuration,
                logger: logger,
                notifies: notifies
            )
            if follows {
                try await store.startFollowing(interval: followInterval, listens: listens)
            }
            return store
        } catch {
            runTask.cancel()
            throw error
        }
    }

    /// Stops following other nodes and the connection pool (queries after this fail).
    package func close() {
        self.availability.withLock { $0.probe }?.cancel()
        for task in self.followTasks.withLock({ $0 }) {
            task.cancel()
        }
        self.wakeFollower.finish()
        self.pool.withLock { $0.run }.cancel()
    }

    /// Starts from every channel's current last sequence: what was committed before this node started is not
    /// delivered again (subscribers resume it from the log).
    private func startFollowing(interval: Duration, listens: Bool) async throws {
        var delivered: [String: Int64] = [:]
        try await Self.describingErrors(url: self.url) {
            for try await (name, last) in try await self.client.query(
                "SELECT name, last_sequence FROM channel",
                logger: self.logger
            ).decode((String, Int64).self) {
                delivered[name] = last
            }
        }
        self.follow.withLock { state in
            state.delivered = delivered
            state.needsFullCheck = false
        }
        let wakes = self.wakes
        let follower = Task { await self.runFollower(wakes: wakes, interval: interval) }
        let listener = listens ? Task { await self.runListener() } : nil
        self.followTasks.withLock { $0 = [follower] + (listener.map { [$0] } ?? []) }
    }

    package func observeCommits(_ observer: @escaping @Sendable (CommittedBatch) -> Void) {
        self.commitObserver.withLock { $0 = CommitObserver(receive: observer) }
    }

    /// Turns connection and server errors into a ``StoreError`` whose description is one readable line:
    /// ``StoreError/Code/unreachable`` when the server cannot be reached, was lost, or refuses connections (what a
    /// publisher is answered 503 for, and what makes the store probe the server again),
    /// ``StoreError/Code/statementFailed`` when it answered a statement with an error.
    static func describingErrors<T>(url: PostgreSQLURL, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError {
            throw StoreError(
                code: Self.isOutage(error) ? .unreachable : .statementFailed,
                path: url.description,
                message: "PostgreSQL: " + Self.reason(error)
            )
        } catch  where "\(type(of: error))" == "ConnectionPoolError" {
            // The pool's own errors (its circuit breaker, open while no connection can be made): the pool module
            // is not a product of postgres-nio, so its type is recognised by name.
            throw StoreError(
                code: .unreachable,
                path: url.description,
                message: "PostgreSQL: no connection can be made (\(error))"
            )
        }
    }

    /// Whether an error means the server is out of reach (as opposed to a statement it refused): connection errors,
    /// and the server's connection, shutdown, login and too-many-connections states (SQLSTATE 08, 57P, 28, 3D, 53300).
    static func isOutage(_ error: PSQLError) -> Bool {
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            return ["08", "57P", "28", "3D"].contains { state.hasPrefix($0) } || state == "53300"
        case .messageDecodingFailure, .unexpectedBackendMessage, .invalidCommandTag, .tooManyParameters,
            .listenFailed, .unlistenFailed:
            return false
        default:
            return true
        }
    }

    /// The server's message, or what failed on the connection (PSQLError's own description hides both).
    static func reason(_ error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] {
            return message
        }
        if let underlying = error.underlying {
            return "\(error.code): \(underlying)"
        }
        return "\(error.code)"
    }
}

extension Data {
    var byteBuffer: ByteBuffer { ByteBuffer(bytes: self) }
}

extension ByteBuffer {
    var data: Data { Data(self.readableBytesView) }
}
