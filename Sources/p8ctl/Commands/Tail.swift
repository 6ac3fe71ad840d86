import ArgumentParser
import Foundation
import Store
import UnixSignals

extension P8Ctl {
    /// `p8ctl tail`: follows channels as items are committed, like `tail -f`.
    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tail",
            abstract: "Follow channels: print items as they are committed, like tail -f.",
            discussion: """
                Prints the last --lines retained items of each channel (none with --from-now), then every new \
                item as it is committed, one a line: time, channel, sequence, id, size and content; with \
                --json one JSON object a line (NDJSON). It polls the database read-only about every 200 ms \
                (SQLite or PostgreSQL: there it sees every node's items), so it follows running servers \
                without talking to them; a channel that does not exist yet is \
                followed from its first item. If retention removes items before they could be shown, a \
                warning on stderr says how many. Stops on Ctrl-C or SIGTERM with status 0.

                Example:
                  p8ctl tail news chat.room1 --from-now --json
                """
        )

        @Argument(help: ArgumentHelp("The channels to follow.", valueName: "channel"))
        var channels: [String]

        @Option(
            name: [.customShort("n"), .long],
            help: ArgumentHelp("Print this many recent items first.", valueName: "n")
        )
        var lines: Int = 10

        @Flag(name: .customLong("from-now"), help: "Print only items committed from now on (same as --lines 0).")
        var fromNow = false

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func validate() throws {
            if self.channels.isEmpty {
                throw ValidationError("name at least one channel to follow")
            }
            if self.lines < 0 {
                throw ValidationError("--lines must be 0 or more")
            }
        }

        func run() async throws {
            let store = try await self.options.openReadOnly()
            var positions: [String: Int64] = [:]
            let back = self.fromNow ? 0 : Int64(self.lines)
            let summaries = try await store.channelSummaries()
            for channel in Set(self.channels) {
                let last = summaries.first { $0.name == channel }?.lastSequence ?? 0
                positions[channel] = max(0, last - back)
            }
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            let start = positions
            let json = self.options.json
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in signals {
                        return
                    }
                }
                group.addTask {
                    try await Self.follow(store: store, from: start, json: json)
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }

        /// Polls every channel after its position until cancelled, printing new items in publish order.
        private static func follow(store: any ChannelLogStore, from start: [String: Int64], json: Bool) async throws {
            var positions = start
            let channels = positions.keys.sorted()
            while !Task.isCancelled {
                var batches: [[StoredItem]] = []
                for channel in channels {
                    let position = positions[channel] ?? 0
                    var result = try await store.read(channel: channel, after: .sequence(position), limit: 1000)
                    if case .olderThanRetained = result.status {
                        result = try await store.read(channel: channel, after: .oldestRetained, limit: 1000)
                        let first = result.items?.first?.sequence ?? (result.lastSequence + 1)
                        Output.error(
                            "\(channel): \(first - position - 1) items were trimmed before they could be shown"
                        )
                    } else if case .unknownCursor = result.status {
                        // The channel's log went backwards (a database restored in place): start it again.
                        Output.error("\(channel): the channel's history was reset; following it from its start")
                        result = try await store.read(channel: channel, after: .sequence(0), limit: 1000)
                    }
                    if let items = result.items, let last = items.last {
                        batches.append(items)
                        positions[channel] = last.sequence
                    }
                }
                if !batches.isEmpty {
                    let batch = Self.merged(batches)
                    Output.write(
                        batch.map {
                            (json ? ItemRendering.json($0, content: true).compact : ItemRendering.line($0)) + "\n"
                        }
                        .joined()
                    )
                    continue
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }

        /// Interleaves channels' new items by publish time, each channel's items staying in sequence order.
        static func merged(_ batches: [[StoredItem]]) -> [StoredItem] {
            var next = batches.map { _ in 0 }
            var merged: [StoredItem] = []
            while true {
                var pick: Int?
                for (index, batch) in batches.enumerated() where next[index] < batch.count {
                    if let current = pick, batches[current][next[current]].publishedAt <= batch[next[index]].publishedAt
                    {
                        continue
                    }
                    pick = index
                }
                guard let pick else {
                    return merged
                }
                merged.append(batches[pick][next[pick]])
                next[pick] += 1
            }
        }
    }
}
