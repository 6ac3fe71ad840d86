import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl held`: the held-request records.
    struct Held: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "held",
            abstract: "List held requests: mode, route, client, channels with position and lag, age.",
            discussion: """
                One row per recorded hold (long-poll, stream or WebSocket session), oldest first. CHANNELS \
                shows each channel at the position last delivered on it (a sequence, or the id when the \
                sequence is unknown) and how many items it is behind the channel's newest. Records of an \
                earlier run, found by the server at start-up, are flagged orphaned; records of a server that \
                stopped abnormally are only flagged once it starts again.

                Example:
                  p8ctl held --channel news
                """
        )

        @Option(help: ArgumentHelp("Only holds on this channel.", valueName: "channel"))
        var channel: String?

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func run() async throws {
            let store = try await self.options.openReadOnly()
            let holds = try await store.holds(channel: self.channel)
            var newest: [String: Int64] = [:]
            for summary in try await store.channelSummaries() {
                newest[summary.name] = summary.lastSequence
            }
            if self.options.json {
                Output.line(JSONValue.array(holds.map { Self.json($0, newest: newest) }).pretty)
                return
            }
            if holds.isEmpty {
                Output.line(self.channel.map { "no held requests on \"\($0)\"" } ?? "no held requests")
                return
            }
            let now = Date()
            var table = Table(["ID", "MODE", "ROUTE", "CLIENT", "CHANNELS", "STARTED", "AGE", "STATE"])
            for hold in holds {
                let channels = hold.channels.map { channel in
                    var text = channel.name + "@" + (channel.lastSequence.map(String.init) ?? channel.lastId ?? "start")
                    if let behind = Self.behind(channel, newest: newest), behind > 0 {
                        text += " (\(behind) behind)"
                    }
                    return text
                }
                table.append([
                    hold.id,
                    Self.modeName(hold.mode),
                    hold.route ?? "-",
                    hold.clientAddress ?? "-",
                    channels.isEmpty ? "-" : channels.joined(separator: ", "),
                    TimeFormat.human(hold.startedAt),
                    TimeFormat.age(hold.startedAt, now: now),
                    hold.orphanedAt.map { "orphaned \(TimeFormat.age($0, now: now))" } ?? "held",
                ])
            }
            Output.write(table.render())
        }

        static func modeName(_ mode: HoldRecord.Mode) -> String {
            switch mode {
            case .response: "response"
            case .stream: "stream"
            case .webSocket: "websocket"
            }
        }

        /// Items behind: the channel's newest sequence minus the hold's position, when both are known.
        private static func behind(_ channel: HoldRecord.Channel, newest: [String: Int64]) -> Int64? {
            guard let position = channel.lastSequence else {
                return nil
            }
            return max(0, (newest[channel.name] ?? 0) - position)
        }

        private static func json(_ hold: HoldRecord, newest: [String: Int64]) -> JSONValue {
            .object([
                ("id", .string(hold.id)),
                ("instance", .string(hold.instance)),
                ("mode", .string(Self.modeName(hold.mode))),
                ("route", .optional(hold.route)),
                ("client", .optional(hold.clientAddress)),
                (
                    "channels",
                    .array(
                        hold.channels.map { channel in
                            .object([
                                ("name", .string(channel.name)),
                                ("lastId", .optional(channel.lastId)),
                                ("lastSequence", .optional(channel.lastSequence)),
                                ("newestSequence", .int(newest[channel.name] ?? 0)),
                                ("behind", .optional(Self.behind(channel, newest: newest))),
                            ])
                        }
                    )
                ),
                ("startedAt", .string(TimeFormat.rfc3339(hold.startedAt))),
                ("timeoutAt", hold.timeoutAt.map { .string(TimeFormat.rfc3339($0)) } ?? .null),
                ("orphaned", .bool(hold.orphanedAt != nil)),
                ("orphanedAt", hold.orphanedAt.map { .string(TimeFormat.rfc3339($0)) } ?? .null),
            ])
        }
    }
}
