import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl replay`: the items a client missed after a cursor, printed or re-published.
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Print the items a client missed after an id, with their content, or re-publish them.",
            discussion: """
                Prints every retained item of CHANNEL after the item ID, oldest first, with its stored \
                formats: what a client that last saw ID would be sent on resume. With --json, one item a \
                line (NDJSON). If items after ID have been trimmed the client cannot resume without a gap: \
                exit status 3; an ID that is not an item of the channel: exit status 4.

                replay --publish sends the items again through a running server's publish API, in order \
                and in batches, each with its own id and prev-id (ids the store assigned included), so \
                cursors clients hold stay valid. A server that still retains an item with the same id does \
                not store or deliver it twice: replaying into the server that wrote the database changes \
                nothing. The use is to restore items into a server that lost them, or to move a channel: \
                read a backup or another server's database with --db and publish to --url; \
                --from-oldest instead of --after replays every retained item (moving a channel between \
                SQLite and PostgreSQL).

                Examples:
                  p8ctl replay news --after 2f1c9a0e3b6d4e21-41
                  p8ctl replay news --after n41 --db backup.sqlite --publish --url http://10.0.0.2:5561

                Exit status for --publish as for publish: 69 the server cannot be reached; 76 it refused a \
                batch (the batches before it are published); 77 not authorised.
                """
        )

        /// At most this many items, and about this many bytes, per publish request (the API takes 1 MB).
        static let batchItems = 200
        static let batchBytes = 256 * 1024

        @Argument(help: ArgumentHelp("The channel.", valueName: "channel"))
        var channel: String

        @Option(help: ArgumentHelp("The id of the last item the client saw.", valueName: "id"))
        var after: String?

        @Flag(
            name: .customLong("from-oldest"),
            help: "Start at the oldest retained item instead of after an id (to move a whole channel)."
        )
        var fromOldest = false

        func validate() throws {
            if (self.after != nil) == self.fromOldest {
                throw ValidationError("give one of --after ID and --from-oldest")
            }
        }

        /// How the start is named in messages.
        private var start: String { self.after.map { "\"\($0)\"" } ?? "the oldest retained item" }

        @Flag(help: "Re-publish the items through the running server's publish API instead of printing them.")
        var publish = false

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        @OptionGroup(title: "Server (with --publish)") var server: ServerOptions

        func run() async throws {
            let store = try await self.options.openReadOnly()
            _ = try await store.summary(ofChannel: self.channel)
            let client = self.publish ? try self.server.client(config: self.options.config) : nil
            var items: [StoredItem] = []
            var published = 0
            try await store.forEachPage(
                channel: self.channel,
                after: self.after.map { .id($0) } ?? .oldestRetained,
                describing: self.after.map { "id \"\($0)\"" } ?? "the oldest retained item"
            ) { page in
                if let client {
                    let count = try Self.republish(page, to: client, publishedBefore: published)
                    published += count
                } else if self.options.json {
                    Output.write(page.map { ItemRendering.json($0, content: true).compact + "\n" }.joined())
                } else {
                    items += page
                }
                return true
            }
            if let client {
                self.report(published: published, to: client)
                return
            }
            if self.options.json {
                return
            }
            if items.isEmpty {
                Output.line("nothing missed: \(self.start) is the newest item of \"\(self.channel)\"")
                return
            }
            Output.write(ItemRendering.table(items, content: true))
        }

        private func report(published: Int, to client: ControlClient) {
            if self.options.json {
                Output.line(
                    JSONValue.object([
                        ("channel", .string(self.channel)), ("after", self.after.map { .string($0) } ?? .null),
                        ("published", .int(published)), ("url", .string(client.url)),
                    ]).compact
                )
            } else if published == 0 {
                Output.line("nothing to re-publish: \(self.start) is the newest item of \"\(self.channel)\"")
            } else {
                Output.line(
                    "re-published \(published) item\(published == 1 ? "" : "s") of \"\(self.channel)\" after "
                        + "\(self.start) to \(client.url) (items it still holds are not stored or delivered twice)"
                )
            }
        }

        /// Publishes a page of items in batches; returns how many were accepted.
        private static func republish(
            _ page: [StoredItem],
            to client: ControlClient,
            publishedBefore: Int
        ) throws -> Int {
            var published = 0
            var batch: [String] = []
            var size = 0
            func flush() throws {
                guard !batch.isEmpty else { return }
                let body = "{\"items\":[" + batch.joined(separator: ",") + "]}"
                let response = try client.post("/publish/", json: Array(body.utf8))
                do {
                    try response.requireSuccess(from: client)
                } catch {
                    let done = publishedBefore + published
                    throw CtlError(
                        error.status,
                        "\(error.message) (\(done) item\(done == 1 ? "" : "s") re-published before it)"
                    )
                }
                published += batch.count
                batch = []
                size = 0
            }
            for item in page {
                let text = try Self.itemJSON(item)
                if size + text.utf8.count > Self.batchBytes || batch.count == Self.batchItems {
                    try flush()
                }
                batch.append(text)
                size += text.utf8.count
            }
            try flush()
            return published
        }

        /// The stored item as a publish item: channel, id, prev-id, its stored formats as they are and its meta.
        private static func itemJSON(_ item: StoredItem) throws -> String {
            guard let formats = String(data: item.formats, encoding: .utf8),
                (try? JSONSerialization.jsonObject(with: item.formats)) is [String: Any]
            else {
                throw CtlError(.failure, "item #\(item.sequence) (\(item.id)) has stored formats that are not JSON")
            }
            let oneLine = formats.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
            var members: [(String, JSONValue)] = [("channel", .string(item.channel)), ("id", .string(item.id))]
            if let prevID = item.prevId {
                members.append(("prev-id", .string(prevID)))
            }
            members.append(("formats", .raw(oneLine)))
            if let meta = ItemRendering.metaJSON(item) {
                members.append(("meta", .raw(meta)))
            }
            return JSONValue.object(members).compact
        }
    }
}
