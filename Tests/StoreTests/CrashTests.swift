import Foundation
import GRIP
import P8TestSupport
import Store
import Testing

/// Kills a child process with SIGKILL in the middle of appends and checks the database afterwards.
@Suite(.timeLimit(.minutes(1))) struct CrashTests {
    @Test func everyAcknowledgedAppendSurvivesSIGKILL() async throws {
        let executable = try #require(
            ChildProcess.product("p8-store-bench"),
            "p8-store-bench is built beside the tests"
        )
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        let appenders = 8

        let process = try ChildProcess.spawn(executable, arguments: ["crash-child", path, "\(appenders)"])

        // Read acks until enough have arrived, then kill the child mid-way.
        var acknowledged: [String: (sequence: Int64, batch: Int)] = [:]
        var buffer = Data()
        var ackCount = 0
        var epoch = ""
        let reader = process.stdout
        while ackCount < 2000 {
            let chunk = reader.availableData
            if chunk.isEmpty {
                break
            }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                let fields = line.split(separator: " ")
                if fields.first == "ready", fields.count == 2 {
                    epoch = String(fields[1])
                } else if fields.first == "ack", fields.count == 4, let sequence = Int64(fields[2]),
                    let batch = Int(fields[3])
                {
                    let channel = String(fields[1])
                    if sequence > acknowledged[channel]?.sequence ?? 0 {
                        acknowledged[channel] = (sequence, batch)
                    }
                    ackCount += 1
                }
            }
        }
        process.signal(SIGKILL)
        #expect(try await process.waitForExit() == SIGKILL)
        #expect(ackCount >= 2000)

        let store = try await openStore(path, retention: RetentionPolicy(maxItems: 1_000_000))
        #expect(store.epoch == epoch)
        for appender in 0..<appenders {
            let channel = "crash-\(appender)"
            let read = try await store.read(channel: channel, after: .sequence(0), limit: 1_000_000)
            let items = try #require(read.items, "\(channel) is readable from the start")
            #expect(items.map(\.sequence) == Array(1...Int64(max(items.count, 1))).prefix(items.count).map { $0 })
            // Items come in whole batches, in order, with intact payloads.
            var expectedBatch = 0
            var index = 0
            while index < items.count {
                let count = 1 + expectedBatch % 3
                #expect(index + count <= items.count, "\(channel): batch \(expectedBatch) is torn")
                for part in 0..<count where index + part < items.count {
                    let text = items[index + part].text
                    let header = "\(appender) \(expectedBatch) \(part) \(count)|"
                    #expect(text.hasPrefix(header), "\(channel) item \(index + part + 1): \(text.prefix(30))")
                    #expect(items[index + part].formats.count == 200)
                }
                index += count
                expectedBatch += 1
            }
            if let last = acknowledged[channel] {
                #expect(read.lastSequence >= last.sequence, "\(channel): acknowledged \(last.sequence) is present")
                #expect(expectedBatch > last.batch, "\(channel): acknowledged batch \(last.batch) is present")
            }
        }
    }
}
