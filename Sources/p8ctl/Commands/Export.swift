import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl export`: every retained item as NDJSON.
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write retained items as NDJSON on stdout, one item a line.",
            discussion: """
                Each line is one item: channel, sequence, id, prevId, publishedAt (RFC 3339), size, and its \
                stored formats (formats when they are JSON, else formatsText or formatsBase64). Channels by \
                name, each oldest first. The output is always NDJSON, with or without --json.

                Example:
                  p8ctl export news > news.ndjson
                """
        )

        @Argument(help: ArgumentHelp("Only this channel (default: every channel).", valueName: "channel"))
        var channel: String?

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func run() async throws {
            let store = try await self.options.openReadOnly()
            let channels: [String]
            if let channel = self.channel {
                channels = [try await store.summary(ofChannel: channel).name]
            } else {
                channels = try await store.channelSummaries().filter { $0.itemCount > 0 }.map(\.name)
            }
            for channel in channels {
                try await store.forEachPage(channel: channel, after: .oldestRetained, describing: "the oldest item") {
                    page in
                    Output.write(page.map { ItemRendering.json($0, content: true).compact + "\n" }.joined())
                    return true
                }
            }
        }
    }
}
