import ArgumentParser
import Foundation

extension P8Ctl {
    /// `p8ctl stats`: the running server's counters and live subscribers.
    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Show the running server's counters and live subscribers per channel.",
            discussion: """
                Asks the running p8 (GET /stats on its publish API) for its counters since it started \
                (items received and committed, duplicates, deliveries, holds, resumes, resets...) and the \
                number of held connections subscribed to each channel now. With --json, the server's JSON: \
                {"counters": {...}, "channels": {"<channel>": {"subscribers": n}}, "store": {...}}.

                Example:
                  p8ctl stats --url http://127.0.0.1:5561

                Exit status: 0 success; 69 the server cannot be reached; 76 it answered an error; 77 not \
                authorised (push_in_http_key); 78 a bad config file.
                """
        )

        @Option(
            name: .long,
            help: ArgumentHelp(
                "The config file (default: ./p-8.conf, else config/p-8.conf.example).",
                valueName: "file"
            ),
            completion: .file()
        )
        var config: String?

        @Flag(name: .long, help: "Print the server's JSON.")
        var json = false

        @OptionGroup(title: "Server") var server: ServerOptions

        func run() async throws {
            let client = try self.server.client(config: self.config)
            if self.json {
                let response = try client.get("/stats")
                try response.requireSuccess(from: client)
                Output.line(response.text)
                return
            }
            let stats = try ServerStats.fetch(from: client)
            var counters = Table(["COUNTER", "VALUE"], rightAligned: [1])
            for counter in stats.counters {
                counters.append([counter.name, String(counter.value)])
            }
            Output.write(counters.render())
            Output.line("")
            if stats.subscribers.isEmpty {
                Output.line("no live subscribers")
                return
            }
            var channels = Table(["CHANNEL", "SUBSCRIBERS"], rightAligned: [1])
            for entry in stats.subscribers {
                channels.append([entry.channel, String(entry.count)])
            }
            Output.write(channels.render())
        }
    }
}
