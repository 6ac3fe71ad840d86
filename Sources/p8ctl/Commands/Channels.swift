import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl channels`: each channel with its retained history at a glance.
    struct Channels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "channels",
            abstract:
                "List channels: retained items and bytes, oldest and newest item, last publish, live subscribers.",
            discussion: """
                One row per channel ever published to (its name is kept when every item has been trimmed, \
                so that sequences are never reused). OLDEST and NEWEST are the retained items' sequences and \
                ids. LIVE is the number of held connections subscribed now; it is shown when the running \
                server using this database answers on its publish API (--url, else the config's [handler] \
                address), and left out when it does not (server down, or another database).

                Example:
                  p8ctl channels --prefix chat.
                """
        )

        @Option(help: ArgumentHelp("Only channels whose name starts with this.", valueName: "prefix"))
        var prefix: String = ""

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        @OptionGroup(title: "Server (live subscribers)") var server: ServerOptions

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
            let live = self.liveSubscribers(epoch: store.epoch)
            if self.options.json {
                Output.line(JSONValue.array(rows.map { Self.json($0, live: live) }).pretty)
                return
            }
            if rows.isEmpty {
                Output.line(self.prefix.isEmpty ? "no channels" : "no channels starting with \"\(self.prefix)\"")
                return
            }
            let now = Date()
            var headers = ["CHANNEL", "ITEMS", "BYTES", "LAST-SEQ", "OLDEST", "NEWEST", "LAST PUBLISHED", "AGE"]
            if live != nil {
                headers.append("LIVE")
            }
            var table = Table(headers, rightAligned: [1, 2, 3, 8])
            for (summary, oldest, newest) in rows {
                var row: [String] = [
                    summary.name,
                    String(summary.itemCount),
                    ByteCount.human(summary.byteCount),
                    String(summary.lastSequence),
                    oldest.map { "#\($0.sequence) \($0.id)" } ?? "-",
                    newest.map { "#\($0.sequence) \($0.id)" } ?? "-",
                    newest.map { TimeFormat.human($0.publishedAt) } ?? "-",
                    newest.map { TimeFormat.age($0.publishedAt, now: now) } ?? "-",
                ]
                if let live {
                    row.append(String(live[summary.name] ?? 0))
                }
                table.append(row)
            }
            Output.write(table.render())
        }

        /// Live subscribers by channel from the running server, or nil when no server using this database
        /// (same epoch) answers.
        private func liveSubscribers(epoch: String) -> [String: Int]? {
            guard let client = try? self.server.client(config: self.options.config, timeout: 2),
                let stats = try? ServerStats.fetch(from: client),
                stats.epoch == epoch
            else {
                return nil
            }
            return Dictionary(stats.subscribers.map { ($0.channel, $0.count) }, uniquingKeysWith: +)
        }

        private static func json(_ row: (ChannelSummary, StoredItem?, StoredItem?), live: [String: Int]?) -> JSONValue {
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
                ("subscribers", live.map { .int($0[summary.name] ?? 0) } ?? .null),
            ])
        }
    }
}
