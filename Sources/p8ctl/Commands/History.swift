import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl history`: a channel's retained items after a cursor.
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history",
            abstract: "Show a channel's retained items, oldest first.",
            discussion: """
                Prints each item's sequence, id, prev-id, publish time, age and size, and with --content its \
                stored formats. Without a cursor it starts at the oldest retained item. --after and \
                --after-seq start after an item, as a resuming client would; --since starts at a time.

                A cursor whose items have since been trimmed is reported (exit status 3), and so is a cursor \
                that is not an item of the channel (exit status 4): never a silent gap. An unknown channel \
                exits with status 2.

                Examples:
                  p8ctl history news --after 2f1c9a0e3b6d4e21-41 --limit 20 --content
                  p8ctl history news --since 15m --json
                """
        )

        @Argument(help: ArgumentHelp("The channel.", valueName: "channel"))
        var channel: String

        @Option(help: ArgumentHelp("Start after the item with this id.", valueName: "id"))
        var after: String?

        @Option(name: .customLong("after-seq"), help: ArgumentHelp("Start after this sequence.", valueName: "n"))
        var afterSequence: Int64?

        @Option(
            help: ArgumentHelp(
                "Only items published at or after this time: 2026-11-24 21:05:03 (local), RFC 3339, or an age "
                    + "such as 15m, 2h, 7d.",
                valueName: "time"
            )
        )
        var since: TimeArgument?

        @Option(help: ArgumentHelp("Show at most this many items.", valueName: "n"))
        var limit: Int?

        @Flag(help: "Show the stored formats (the published content).")
        var content = false

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func validate() throws {
            let cursors = [self.after != nil, self.afterSequence != nil, self.since != nil].filter { $0 }.count
            if cursors > 1 {
                throw ValidationError("give at most one of --after, --after-seq and --since")
            }
            if let limit = self.limit, limit < 1 {
                throw ValidationError("--limit must be at least 1")
            }
            if let sequence = self.afterSequence, sequence < 0 {
                throw ValidationError("--after-seq must be 0 or more")
            }
        }

        func run() async throws {
            let store = try await self.options.openReadOnly()
            let summary = try await store.summary(ofChannel: self.channel)
            let cursor: Cursor
            let cursorText: String
            if let after = self.after {
                cursor = .id(after)
                cursorText = "id \"\(after)\""
            } else if let sequence = self.afterSequence {
                cursor = .sequence(sequence)
                cursorText = "sequence \(sequence)"
            } else {
                cursor = .oldestRetained
                cursorText = "the oldest retained item"
            }
            var items: [StoredItem] = []
            let limit = self.limit ?? Int.max
            try await store.forEachPage(channel: self.channel, after: cursor, describing: cursorText) { page in
                for item in page where self.since.map({ item.publishedAt >= $0.date }) ?? true {
                    items.append(item)
                    if items.count >= limit {
                        return false
                    }
                }
                return true
            }
            if self.options.json {
                let document = JSONValue.object([
                    ("channel", .string(self.channel)),
                    ("epoch", .string(store.epoch)),
                    ("lastSequence", .int(summary.lastSequence)),
                    ("retainedItems", .int(summary.itemCount)),
                    ("items", .array(items.map { ItemRendering.json($0, content: self.content) })),
                ])
                Output.line(document.pretty)
                return
            }
            if items.isEmpty {
                Output.line("no items")
                return
            }
            Output.write(ItemRendering.table(items, content: self.content))
        }
    }
}
