import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl channels`: each channel with its retained history at a glance.
    struct Channels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "channels",
            abstract: "List channels: retained items and bytes, oldest and newest item, last publish.",
            discussion: """
                One row per channel ever published to (its name is kept when every item has been trimmed, \
                so that sequences are never reused). OLDEST and NEWEST are the retained items' sequences and \
                ids. Live subscriber counts need the running server and arrive with its publish API.

                Example:
                  p8ctl channels --prefix chat.
                """
        )

        @Option(help: ArgumentHelp("Only channels whose name starts with this.", valueName: "prefix"))
        var prefix: String = ""

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func run() async throws {
            let store = try await self.options.openReadOnly()
            var rows: [(ChannelSummary, StoredItem?, StoredItem?)] = []
            for summary in try await store.channelSummaries(prefix: self.prefix) {
                var oldest: StoredItem?
                var newest: StoredItem?
                if summary.itemCount > 0 {
                    oldest = try await store.oldest(channel: summary.name)
                    newest = try await store.newest(channel: summary.name)
                }
                rows.append((summary, oldest, newest))
            }
            if self.options.json {
                Output.line(JSONValue.array(rows.map(Self.json)).pretty)
                return
            }
            if rows.isEmpty {
                Output.line(self.prefix.isEmpty ? "no channels" : "no channels starting with \"\(self.prefix)\"")
                return
            }
            let now = Date()
            var table = Table(
                ["CHANNEL", "ITEMS", "BYTES", "LAST-SEQ", "OLDEST", "NEWEST", "LAST PUBLISHED", "AGE"],
                rightAligned: [1, 2, 3]
            )
            for (summary, oldest, newest) in rows {
                table.append([
                    summary.name,
                    String(summary.itemCount),
                    ByteCount.human(summary.byteCount),
                    String(summary.lastSequence),
                    oldest.map { "#\($0.sequence) \($0.id)" } ?? "-",
                    newest.map { "#\($0.sequence) \($0.id)" } ?? "-",
                    newest.map { TimeFormat.human($0.publishedAt) } ?? "-",
                    newest.map { TimeFormat.age($0.publishedAt, now: now) } ?? "-",
                ])
            }
            Output.write(table.render())
        }

        private static func json(_ row: (ChannelSummary, StoredItem?, StoredItem?)) -> JSONValue {
            let (summary, oldest, newest) = row
            func item(_ item: StoredItem?) -> JSONValue {
                guard let item else {
                    return .null
                }
                return .object([
                    ("sequence", .int(item.sequence)),
                    ("id", .string(item.id)),
                    ("publishedAt", .string(TimeFormat.rfc3339(item.publishedAt))),
                ])
            }
            return .object([
                ("name", .string(summary.name)),
                ("items", .int(summary.itemCount)),
                ("bytes", .int(summary.byteCount)),
                ("lastSequence", .int(summary.lastSequence)),
                ("oldest", item(oldest)),
                ("newest", item(newest)),
                ("lastPublishedAt", newest.map { .string(TimeFormat.rfc3339($0.publishedAt)) } ?? .null),
            ])
        }
    }
}
