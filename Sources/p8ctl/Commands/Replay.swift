import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl replay`: the items a client missed after a cursor.
    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Print the items a client missed after an id, with their content.",
            discussion: """
                Prints every retained item of CHANNEL after the item ID, oldest first, with its stored \
                formats: what a client that last saw ID would be sent on resume. With --json, one item a \
                line (NDJSON). If items after ID have been trimmed the client cannot resume without a gap: \
                exit status 3; an ID that is not an item of the channel: exit status 4.

                Re-publishing the items (replay --publish) needs the server's publish API and comes with it.

                Example:
                  p8ctl replay news --after 2f1c9a0e3b6d4e21-41
                """
        )

        @Argument(help: ArgumentHelp("The channel.", valueName: "channel"))
        var channel: String

        @Option(help: ArgumentHelp("The id of the last item the client saw.", valueName: "id"))
        var after: String

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func run() async throws {
            let store = try await self.options.openReadOnly()
            _ = try await store.summary(ofChannel: self.channel)
            var items: [StoredItem] = []
            try await store.forEachPage(
                channel: self.channel,
                after: .id(self.after),
                describing: "id \"\(self.after)\""
            ) { page in
                if self.options.json {
                    Output.write(page.map { ItemRendering.json($0, content: true).compact + "\n" }.joined())
                } else {
                    items += page
                }
                return true
            }
            if self.options.json {
                return
            }
            if items.isEmpty {
                Output.line("nothing missed: \"\(self.after)\" is the newest item of \"\(self.channel)\"")
                return
            }
            Output.write(ItemRendering.table(items, content: true))
        }
    }
}
