import Foundation
import GRDB
package import GRIP
package import Logging
import Synchronization

/// The durable store: channel logs (append, read after a cursor, de-duplicate, retention), the database's epoch,
/// and held-request records, in one SQLite database in WAL mode (one writer connection, a pool of readers).
///
/// Appends are group-committed (see ``append(_:completion:)``); reads of hot channels are mostly answered from a small
/// in-memory tail of each channel's newest items. One process writes a database; any number may open it
/// read-only (``openReadOnly(path:logger:)``), as `p8ctl` does.
///
/// ## Topics
/// - ``open(configuration:logger:)``, ``openReadOnly(path:logger:)``, ``epoch``
/// - ``append(_:completion:)``, ``read(channel:after:limit:)``, ``oldest(channel:)``, ``newest(channel:)``,
///   ``channelSummaries(prefix:)``
/// - ``trim(now:)``, ``RetentionService``
/// - ``recordHolds(upserts:deletes:)``, ``enqueueHolds(upserts:deletes:)``, ``holds(channel:)``,
///   ``markOrphans(currentInstance:now:)``, ``deleteOrphans()``
/// - ``backup(to:)``
package final class ChannelStore: Sendable {
    /// The database's epoch: random, made when the database was created, returned with every read.
    package let epoch: String
    /// The database file.
    package let path: String
    /// The `[store]` configuration (retention, durability). For a read-only store, the defaults.
    package let configuration: StoreConfiguration
    /// Whether the store was opened with ``openReadOnly(path:logger:)``: every write throws.
    package let isReadOnly: Bool

    let pool: DatabasePool
    let logger: Logger
    /// Appends and hold writes waiting for the next commit, and whether a commit loop is running.
    let commitQueue = Mutex(CommitQueue())
    /// The id and last sequence of every channel the writer has seen; touched only by the commit loop.
    let channelCache = Mutex([String: CachedChannel]())
    /// The channels that have items in the reordering buffer (a subset of `channelCache`'s).
    let waitingChannels = Mutex(Set<String>())
    /// Set when a commit failed: the next one reads the reordering buffer's channels again.
    let needsWaitingReload = Mutex(false)
    /// Who is told of what commits append (``observeCommits(_:)``).
    let commitObserver = Mutex<CommitObserver?>(nil)
    /// Wakes a commit job that waits for more appenders to join its batch.
    let batchCondition = NSCondition()
    /// The newest items of recently appended channels.
    let tails: ChannelTails
    /// Where reads found their items (memory or database), for the metrics.
    package let readSources = ReadSources()
    /// Group commit tuning: the longest a commit waits for more appends, and the batch size that stops the wait.
    let maxBatchDelay: Duration = .milliseconds(1)
    let maxBatchItems = 1024

    private init(
        pool: DatabasePool,
        path: String,
        epoch: String,
        configuration: StoreConfiguration,
        isReadOnly: Bool,
        logger: Logger
    ) {
        self.pool = pool
        self.path = path
        self.epoch = epoch
        self.configuration = configuration
        self.isReadOnly = isReadOnly
        self.logger = logger
        self.tails = ChannelTails(itemsPerChannel: 64, maxChannels: 4096)
    }

    /// Opens (creating it and its directory if needed) and migrates the database for the server.
    ///
    /// - Parameters:
    ///   - configuration: The `[store]` section.
    ///   - logger: The logger for store events.
    /// - Throws: A ``StoreError`` if the file is not an SQLite database (``StoreError/Code/corruptDatabase``),
    ///   another application's database (``StoreError/Code/notAP8Database``), or written by a newer P-8
    ///   (``StoreError/Code/newerDatabase``); a file-system or SQLite error otherwise.
    package static func open(configuration: StoreConfiguration, logger: Logger) async throws -> ChannelStore {
        let path = configuration.databaseFile
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var config = Configuration()
        config.busyMode = .timeout(10)
        let pool = try Self.classifyingErrors(path: path) {
            try DatabasePool(path: path, configuration: config)
        }
        // Only the writer's setting matters. GRDB sets NORMAL when it enables WAL, after `prepareDatabase`
        // would run, so set it on the writer once the pool is open.
        let synchronous = configuration.synchronous == .full ? "FULL" : "NORMAL"
        try await Self.classifyingErrors(path: path) {
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 10000")
            }
        }
        let migrator = try StoreMigrations.migrator()
        let epoch = try await Self.classifyingErrors(path: path) {
            try await pool.read { db in try Self.checkIdentity(db, migrator: migrator, path: path) }
            try migrator.migrate(pool)
            return try await pool.read { db in try Self.fetchEpoch(db, path: path) }
        }
        logger.debug("store opened", metadata: ["p8.store.path": "\(path)", "p8.store.epoch": "\(epoch)"])
        let store = ChannelStore(
            pool: pool,
            path: path,
            epoch: epoch,
            configuration: configuration,
            isReadOnly: false,
            logger: logger
        )
        try await pool.writeWithoutTransaction { db in try store.loadWaitingChannels(db) }
        return store
    }

    /// Opens an existing database read-only, while its server runs or not (for `p8ctl`).
    ///
    /// - Parameters:
    ///   - path: The database file.
    ///   - logger: The logger for store events.
    /// - Throws: A ``StoreError`` as ``open(configuration:logger:)`` does, also when the file does not exist
    ///   (``StoreError/Code/notFound``) or the database is not fully migrated (``StoreError/Code/outdatedDatabase``:
    ///   start the server once to migrate it).
    package static func openReadOnly(path: String, logger: Logger) async throws -> ChannelStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError(code: .notFound, path: path, message: "there is no database file here")
        }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        let pool = try Self.classifyingErrors(path: path) {
            try DatabasePool(path: path, configuration: config)
        }
        let migrator = try StoreMigrations.migrator()
        let epoch = try await Self.classifyingErrors(path: path) {
            try await pool.read { db in
                try Self.checkIdentity(db, migrator: migrator, path: path)
                guard try migrator.hasCompletedMigrations(db) else {
                    throw StoreError(
                        code: .outdatedDatabase,
                        path: path,
                        message: "the database is from an older P-8 and needs migrating: start p8 once to migrate it"
                    )
                }
                return try Self.fetchEpoch(db, path: path)
            }
        }
        return ChannelStore(
            pool: pool,
            path: path,
            epoch: epoch,
            configuration: StoreConfiguration(databaseFile: path),
            isReadOnly: true,
            logger: logger
        )
    }

    /// Copies the whole database, consistently, to a new file while the store stays in use (SQLite online backup).
    ///
    /// The copy gets a new epoch: once restored, it is a different history from the live database (which goes on
    /// after the backup and may reuse the copy's later sequences), so cursors taken from the live database
    /// must not resume against it silently.
    /// - Parameter path: The destination file; an existing database there is overwritten.
    /// - Returns: The copy's new epoch and what it holds.
    @discardableResult
    package func backup(to path: String) async throws -> BackupSummary {
        let destination = try DatabaseQueue(path: path)
        try await self.pool.read { db in
            try destination.writeWithoutTransaction { destinationDB in
                try db.backup(to: destinationDB)
            }
        }
        let summary = try await destination.write { db in
            try db.execute(sql: "UPDATE store SET epoch = lower(hex(randomblob(8))) WHERE id = 1")
            return try BackupSummary(db)
        }
        try destination.close()
        return summary
    }

    /// The durability the writer connection actually uses (`PRAGMA synchronous`), for diagnostics.
    package func writerSynchronousMode() async throws -> SynchronousMode {
        let value = try await self.pool.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? 1
        }
        return value >= 2 ? .full : .normal
    }

    /// Refuses a file that is another application's database or one written by a newer P-8.
    private static func checkIdentity(_ db: Database, migrator: DatabaseMigrator, path: String) throws {
        let applicationID = try Int.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        // GRDB's own bookkeeping table alone means another P-8 process is creating this database right now.
        let objectCount =
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master WHERE name != 'grdb_migrations'") ?? 0
        if applicationID == StoreMigrations.applicationID {
            if try migrator.hasBeenSuperseded(db) {
                let known = Set(migrator.migrations)
                let unknown = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
                    .filter { !known.contains($0) }
                throw StoreError(
                    code: .newerDatabase,
                    path: path,
                    message: "the database was written by a newer P-8 (migrations \(unknown.joined(separator: ", ")) "
                        + "are unknown to this build); upgrade P-8 or restore an older backup"
                )
            }
        } else if applicationID != 0 || objectCount > 0 {
            throw StoreError(
                code: .notAP8Database,
                path: path,
                message: "the file is an SQLite database of another application (application_id \(applicationID)), "
                    + "not a P-8 database; point [store] database_file elsewhere"
            )
        }
    }

    private static func fetchEpoch(_ db: Database, path: String) throws -> String {
        guard let epoch = try String.fetchOne(db, sql: "SELECT epoch FROM store WHERE id = 1") else {
            throw StoreError(code: .corruptDatabase, path: path, message: "the database has no epoch row")
        }
        return epoch
    }

    /// Turns SQLite's "not a database" and "corrupt" errors into a ``StoreError`` that says so.
    private static func classifyingErrors<T>(path: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError {
            throw Self.classify(error, path: path)
        }
    }

    private static func classifyingErrors<T>(path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as DatabaseError {
            throw Self.classify(error, path: path)
        }
    }

    private static func classify(_ error: DatabaseError, path: String) -> any Error {
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return StoreError(
                code: .corruptDatabase,
                path: path,
                message: "the file is not an SQLite database, or it is damaged; restore a backup or remove it",
                underlying: error
            )
        default:
            return error
        }
    }

    func checkWritable() throws {
        if self.isReadOnly {
            throw StoreError(code: .readOnly, path: self.path, message: "the store was opened read-only")
        }
    }
}

/// What ``ChannelStore/backup(to:)`` copied.
package struct BackupSummary: Sendable, Hashable {
    /// The copy's epoch (a new one).
    package var epoch: String
    /// Channels in the copy.
    package var channelCount: Int
    /// Retained items in the copy.
    package var itemCount: Int
    /// Retained bytes (item sizes) in the copy.
    package var byteCount: Int
}

/// What the commit loop knows about a channel.
struct CachedChannel: Sendable {
    var id: Int64
    var lastSequence: Int64
    /// The reordering buffer's chain position: the id of the last item that entered the log in sequence.
    var chainLastId: String?
    /// The items waiting in the reordering buffer, in arrival order.
    var waiting: [WaitingItem]
}

extension Date {
    /// Milliseconds since 1970, as the database stores times.
    var storeMilliseconds: Int64 {
        Int64((self.timeIntervalSince1970 * 1000).rounded())
    }

    init(storeMilliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(storeMilliseconds) / 1000)
    }
}
