import Foundation
import GRIP
import Logging
import Store

/// The child process of the crash test: appends batches of 1 to 3 items until it is killed.
///
/// Appender `k` writes to channel `crash-k`; the items of its batch `b` carry the text
/// `"k b j count|"` followed by filler, `j` in `0..<count` with `count = 1 + b % 3`. Each acknowledged batch is
/// written to stdout as one line with one `write` call (no buffering), so the parent sees every ack.
enum CrashChild {
    static func run(databaseFile: String, appenders: Int, logger: Logger) async throws {
        let store = try await ChannelStore.open(
            configuration: StoreConfiguration(databaseFile: databaseFile),
            logger: logger
        )
        FileHandle.standardOutput.write(Data("ready \(store.epoch)\n".utf8))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    let channel = "crash-\(appender)"
                    var batch = 0
                    while true {
                        let count = 1 + batch % 3
                        let items = (0..<count).map { part in
                            NewItem(channel: channel, formats: Self.payload(appender, batch, part, count))
                        }
                        let results = try await store.append(items)
                        let last = results.last?.sequence ?? 0
                        FileHandle.standardOutput.write(Data("ack \(channel) \(last) \(batch)\n".utf8))
                        batch += 1
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func payload(_ appender: Int, _ batch: Int, _ part: Int, _ count: Int) -> Data {
        var text = "\(appender) \(batch) \(part) \(count)|"
        text += String(repeating: "x", count: 200 - min(text.utf8.count, 200))
        return Data(text.utf8)
    }
}
