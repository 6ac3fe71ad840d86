import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl trim`: removes the oldest items of one channel or of all.
    struct Trim: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trim",
            abstract: "Remove a channel's (or every channel's) oldest items now.",
            discussion: """
                Opens the database for writing (SQLite's locking makes this safe while p8 runs) and removes \
                the oldest items of CHANNEL, or of every channel with --all: all but the newest N with \
                --keep N, or every item up to the newest one published before TIME with --before TIME. \
                Prints what was removed. Sequences are never reused: a client whose cursor falls in the \
                removed part is told its history is gone, never resumed silently past a gap.

                Examples:
                  p8ctl trim news --keep 100
                  p8ctl trim --all --before 7d
                """
        )

        @Argument(help: ArgumentHelp("The channel to trim.", valueName: "channel"))
        var channel: String?

        @Flag(help: "Trim every channel.")
        var all = false

        @Option(help: ArgumentHelp("Keep only the newest N items (0 removes every item).", valueName: "n"))
        var keep: Int?

        @Option(
            help: ArgumentHelp(
                "Remove the items published before this time: 2026-11-24 21:05:03 (local), RFC 3339, or an age "
                    + "such as 7d.",
                valueName: "time"
            )
        )
        var before: TimeArgument?

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func validate() throws {
            if (self.channel == nil) == (self.all == false) {
                throw ValidationError("name one channel, or pass --all (not both)")
            }
            if (self.keep == nil) == (self.before == nil) {
                throw ValidationError("give one of --keep N and --before TIME")
            }
            if let keep = self.keep, keep < 0 {
                throw ValidationError("--keep must be 0 or more")
            }
        }

        func run() async throws {
            let readOnly = try await self.options.openReadOnly()
            if let channel = self.channel {
                _ = try await readOnly.summary(ofChannel: channel)
            }
            let store = try await self.options.openForWriting()
            let rule: TrimRule = self.keep.map { .keepNewest($0) } ?? .publishedBefore(self.before?.date ?? Date())
            let results = try await store.trim(channel: self.channel, rule: rule)
            let removed = results.reduce(0) { $0 + $1.deletedItems }
            let bytes = results.reduce(0) { $0 + $1.deletedBytes }
            let trimmed = results.filter { $0.deletedItems > 0 }
            if self.options.json {
                let document = JSONValue.object([
                    ("removedItems", .int(removed)),
                    ("removedBytes", .int(bytes)),
                    (
                        "channels",
                        .array(
                            trimmed.map { result in
                                .object([
                                    ("name", .string(result.channel)),
                                    ("removedItems", .int(result.deletedItems)),
                                    ("removedBytes", .int(result.deletedBytes)),
                                    ("throughSequence", .int(result.throughSequence)),
                                    ("remainingItems", .int(result.remainingItems)),
                                ])
                            }
                        )
                    ),
                ])
                Output.line(document.pretty)
                return
            }
            if trimmed.isEmpty {
                Output.line("nothing to remove")
                return
            }
            var table = Table(["CHANNEL", "REMOVED", "BYTES", "THROUGH-SEQ", "REMAINING"], rightAligned: [1, 2, 3, 4])
            for result in trimmed {
                table.append([
                    result.channel, String(result.deletedItems), ByteCount.human(result.deletedBytes),
                    String(result.throughSequence), String(result.remainingItems),
                ])
            }
            Output.write(table.render())
            Output.line(
                "removed \(removed) item\(removed == 1 ? "" : "s") (\(ByteCount.human(bytes))) from "
                    + "\(trimmed.count) channel\(trimmed.count == 1 ? "" : "s")"
            )
        }
    }
}
