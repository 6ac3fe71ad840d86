import Foundation
import GRIP
import Logging
import Store

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
