import Foundation
import GRIP
import Logging
import Store

/// A fresh temporary directory per test, removed at the end.
struct TemporaryDirectory: ~Copyable {
    let url: URL

    init() throws {
        self.url = FileManager.default.temporaryDirectory.appendingPathComponent("p8-store-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String {
        self.url.appendingPathComponent(name).path
    }

    deinit {
        try? FileManager.default.removeItem(at: self.url)
    }
}

let testLogger = Logger(label: "p8.store.tests")

func openStore(
    _ path: String,
    retention: RetentionPolicy = RetentionPolicy(),
    overrides: [StoreConfiguration.RetentionOverride] = [],
    maxTotalBytes: Int = 1_000_000_000
) async throws -> ChannelStore {
    try await ChannelStore.open(
        configuration: StoreConfiguration(
            databaseFile: path,
            defaultRetention: retention,
            retentionOverrides: overrides,
            maxTotalBytes: maxTotalBytes
        ),
        logger: testLogger
    )
}

func item(_ channel: String, _ text: String, id: String? = nil, at date: Date = Date()) -> NewItem {
    NewItem(channel: channel, id: id, formats: Data(text.utf8), publishedAt: date)
}

extension StoredItem {
    var text: String { String(decoding: self.formats, as: UTF8.self) }
}
