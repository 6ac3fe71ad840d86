import Foundation
import GRDB
import GRIP
import P8TestSupport
import Store
import Testing

@Suite struct MigrationTests {
    @Test func migratesAnEmptyDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("nested/dir/p8.sqlite")
        let store = try await openStore(path)
        #expect(store.epoch.count == 16)
        let queue = try DatabaseQueue(path: path)
        let applied = try await queue.read { db in try StoreMigrations.migrator().appliedMigrations(db) }
        #expect(applied == (try StoreMigrations.files().map(\.identifier)))
        #expect(applied.first == "0001_initial")
        let applicationID = try await queue.read { db in try Int.fetchOne(db, sql: "PRAGMA application_id") }
        #expect(applicationID == StoreMigrations.applicationID)
    }

    @Test func migratesFromEveryEarlierVersion() async throws {
        let identifiers = try StoreMigrations.files().map(\.identifier)
        for identifier in identifiers {
            let directory = try TemporaryDirectory()
            let path = directory.path("p8.sqlite")
            let queue = try DatabaseQueue(path: path)
            try StoreMigrations.migrator(upTo: identifier).migrate(queue)
            try queue.close()
            let store = try await openStore(path)
            _ = try await store.append([item("c", "after migration from \(identifier)")])
            let check = try DatabaseQueue(path: path)
            let applied = try await check.read { db in try StoreMigrations.migrator().appliedMigrations(db) }
            #expect(applied == identifiers, "from \(identifier)")
        }
    }

    @Test func reopeningKeepsTheEpochAndData() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let first = try await openStore(path)
        _ = try await first.append([item("c", "one")])
        let second = try await openStore(path)
        #expect(second.epoch == first.epoch)
        let read = try await second.read(channel: "c", after: .sequence(0))
        #expect(read.epoch == first.epoch)
        #expect(read.items?.map(\.text) == ["one"])
    }

    @Test func aNewDatabaseHasANewEpoch() async throws {
        let directory = try TemporaryDirectory()
        let first = try await openStore(directory.path("a.sqlite"))
        let second = try await openStore(directory.path("b.sqlite"))
        #expect(first.epoch != second.epoch)
    }

    @Test func refusesADatabaseOfANewerP8() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        _ = try await openStore(path)
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('9999_future')")
        }
        try queue.close()
        let error = await #expect(throws: StoreError.self) { try await openStore(path) }
        #expect(error?.code == .newerDatabase)
        #expect(error?.message.contains("newer P-8") == true)
        #expect(error?.message.contains("9999_future") == true)
        let readOnlyError = await #expect(throws: StoreError.self) {
            try await ChannelStore.openReadOnly(path: path, logger: testLogger)
        }
        #expect(readOnlyError?.code == .newerDatabase)
    }

    @Test func refusesAnotherApplicationsDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("other.sqlite")
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in try db.execute(sql: "CREATE TABLE player (id INTEGER PRIMARY KEY)") }
        try queue.close()
        let error = await #expect(throws: StoreError.self) { try await openStore(path) }
        #expect(error?.code == .notAP8Database)
        #expect(error?.message.contains("not a P-8 database") == true)
    }

    @Test func refusesAFileThatIsNotADatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
        let error = await #expect(throws: StoreError.self) { try await openStore(path) }
        #expect(error?.code == .corruptDatabase)
        #expect(error?.message.contains("not an SQLite database") == true)
    }

    @Test func refusesACorruptDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let store = try await openStore(path)
        _ = try await store.append((0..<500).map { item("c", "item \($0) " + String(repeating: "y", count: 300)) })
        try await store.backup(to: directory.path("copy.sqlite"))
        // Damage the copy's pages after the header.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.path("copy.sqlite")))
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: Data(repeating: 0xFF, count: 20_000))
        try handle.close()
        // The schema page is damaged: opening fails with a clear error.
        let error = await #expect(throws: StoreError.self) {
            try await openStore(directory.path("copy.sqlite"))
        }
        #expect(error?.code == .corruptDatabase)
    }

    @Test func readOnlyOpenSeesTheDataAndRefusesWrites() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let store = try await openStore(path)
        _ = try await store.append([item("c", "one"), item("c", "two")])
        let readOnly = try await ChannelStore.openReadOnly(path: path, logger: testLogger)
        #expect(readOnly.epoch == store.epoch)
        #expect(try await readOnly.read(channel: "c", after: .sequence(1)).items?.map(\.text) == ["two"])
        let error = await #expect(throws: StoreError.self) { try await readOnly.append([item("c", "three")]) }
        #expect(error?.code == .readOnly)
    }

    @Test func readOnlyOpenOfAMissingFileSaysSo() async throws {
        let directory = try TemporaryDirectory()
        let error = await #expect(throws: StoreError.self) {
            try await ChannelStore.openReadOnly(path: directory.path("missing.sqlite"), logger: testLogger)
        }
        #expect(error?.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: directory.path("missing.sqlite")))
    }

    @Test func readOnlyOpenRefusesAnOutdatedDatabase() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
            try db.execute(sql: "PRAGMA application_id = \(StoreMigrations.applicationID)")
        }
        try queue.close()
        let error = await #expect(throws: StoreError.self) {
            try await ChannelStore.openReadOnly(path: path, logger: testLogger)
        }
        #expect(error?.code == .outdatedDatabase)
    }

    @Test func backupIsACompleteCopyWithANewEpoch() async throws {
        let directory = try TemporaryDirectory()
        let store = try await openStore(directory.path("p8.sqlite"))
        _ = try await store.append((0..<10).map { item("c", "item \($0)") })
        try await store.backup(to: directory.path("backup.sqlite"))
        let copy = try await ChannelStore.openReadOnly(path: directory.path("backup.sqlite"), logger: testLogger)
        #expect(copy.epoch != store.epoch)
        #expect(try await copy.read(channel: "c", after: .sequence(0)).items?.count == 10)
    }
}

@Suite struct DurabilityTests {
    @Test(arguments: [SynchronousMode.normal, .full])
    func theWriterUsesTheConfiguredSynchronousMode(_ mode: SynchronousMode) async throws {
        let directory = try TemporaryDirectory()
        let store = try await ChannelStore.open(
            configuration: StoreConfiguration(databaseFile: directory.path("p8.sqlite"), synchronous: mode),
            logger: testLogger
        )
        #expect(try await store.writerSynchronousMode() == mode)
    }
}
