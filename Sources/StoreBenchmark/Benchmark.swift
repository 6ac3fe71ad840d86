import Foundation
import GRIP
import Logging
import Store

/// Appends 200-byte items from 1, 16 and 256 concurrent appenders for each `synchronous` mode, then times reads
/// of 1,000 items after a cursor.
enum Benchmark {
    static func run(
        seconds: Double,
        directory: String,
        modes: [SynchronousMode],
        appenderCounts: [Int],
        channels: Int,
        logger: Logger
    ) async throws {
        let root = URL(fileURLWithPath: directory).appendingPathComponent("p8-store-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let formats = Data(String(repeating: "x", count: 200).utf8)

        print("p8-store-bench: \(seconds) s per run, one 200-byte item per append, \(channels) channels")
        print("")
        print("synchronous  appenders      items/s   avg append latency")
        print("-----------  ---------  -----------  -------------------")
        for mode in modes {
            for appenders in appenderCounts {
                let file = root.appendingPathComponent("append-\(mode.rawValue)-\(appenders).sqlite").path
                let store = try await ChannelStore.open(
                    configuration: StoreConfiguration(databaseFile: file, synchronous: mode),
                    logger: logger
                )
                let start = ContinuousClock.now
                let deadline = start + .milliseconds(Int(seconds * 1000))
                let total = try await withThrowingTaskGroup(of: Int.self) { group in
                    for appender in 0..<appenders {
                        group.addTask {
                            let item = NewItem(channel: "bench-\(appender % channels)", formats: formats)
                            var count = 0
                            while ContinuousClock.now < deadline {
                                _ = try await store.append([item])
                                count += 1
                            }
                            return count
                        }
                    }
                    return try await group.reduce(0, +)
                }
                let elapsed = Self.seconds(ContinuousClock.now - start)
                let rate = Double(total) / elapsed
                let latency = elapsed / Double(max(total, 1)) * Double(appenders) * 1_000_000
                print(
                    Self.pad(mode.rawValue, 11) + "  " + Self.pad("\(appenders)", 9, left: true) + "  "
                        + Self.pad(String(format: "%.0f", rate), 11, left: true) + "  "
                        + Self.pad(String(format: "%.0f µs", latency), 19, left: true)
                )
            }
        }

        // Reads: a channel of 5,000 items (retention allows them), 1,000 items read after sequence 2,000, which is
        // far outside the in-memory tail, so every read is a query.
        let file = root.appendingPathComponent("read.sqlite").path
        let retention = RetentionPolicy(maxItems: 10_000)
        let store = try await ChannelStore.open(
            configuration: StoreConfiguration(databaseFile: file, defaultRetention: retention),
            logger: logger
        )
        for _ in 0..<50 {
            _ = try await store.append((0..<100).map { _ in NewItem(channel: "read", formats: formats) })
        }
        var durations: [Double] = []
        for round in 0..<200 {
            let start = ContinuousClock.now
            let result = try await store.read(channel: "read", after: .sequence(Int64(1000 + round)), limit: 1000)
            durations.append(Self.seconds(ContinuousClock.now - start) * 1000)
            guard result.items?.count == 1000 else {
                fatalError("read returned \(result.status)")
            }
        }
        var tailDurations: [Double] = []
        for _ in 0..<200 {
            let start = ContinuousClock.now
            _ = try await store.read(channel: "read", after: .sequence(4990), limit: 1000)
            tailDurations.append(Self.seconds(ContinuousClock.now - start) * 1000)
        }
        durations.sort()
        tailDurations.sort()
        print("")
        print(
            "read 1,000 items after a cursor (query):  median \(Self.ms(durations, 0.5)), p99 \(Self.ms(durations, 0.99))"
        )
        print(
            "read 10 items after a cursor (tail):      median \(Self.ms(tailDurations, 0.5)), "
                + "p99 \(Self.ms(tailDurations, 0.99))"
        )
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func ms(_ sorted: [Double], _ quantile: Double) -> String {
        let index = min(sorted.count - 1, Int(Double(sorted.count) * quantile))
        return String(format: "%.3f ms", sorted[index])
    }

    static func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? padding + text : text + padding
    }
}
