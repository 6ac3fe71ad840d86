import Foundation
import P8TestSupport
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `publish`, `stats`, `replay --publish` and the live column of `channels`, against a running `p8`.
@Suite("p8ctl commands that talk to the running server", .timeLimit(.minutes(1)))
struct ServerCommandTests {
    @Test("publish commits through the API (history shows it); formats, --no-eol and --close as pushpin-publish")
    func publish() async throws {
        try await withServer { server in
            let published = try await ctl(server.args(["publish", "news", "hello", "--id", "n1"]))
            #expect(published.status == 0, "\(published)")
            #expect(published.stdout == "published to \"news\" as \"n1\"\n")
            let history = try await ctl(server.args(["history", "news", "--content"], url: false))
            #expect(history.status == 0, "\(history)")
            #expect(history.stdoutLines.count == 2)
            #expect(history.stdoutLines.last?.contains("n1") == true)
            #expect(history.stdoutLines.last?.contains(#""content":"hello\n""#) == true, "\(history)")
            #expect(history.stdoutLines.last?.contains(#""body":"hello\n""#) == true)
            #expect(
                history.stdoutLines.last?.contains(#""ws-message":{"action":"send","content":"hello","type":"text"}"#)
                    == true
            )

            let raw = try await ctl(
                server.args([
                    "publish", "news", "raw", "--id", "n2", "--prev-id", "n1", "--format", "http-stream", "--no-eol",
                ])
            )
            #expect(raw.status == 0, "\(raw)")
            let close = try await ctl(server.args(["publish", "news", "--close", "--id", "n3"]))
            #expect(close.status == 0, "\(close)")
            let lines = try await historyItems(server, ["--after", "n1"])
            #expect(lines.map { $0["id"] as? String } == ["n2", "n3"])
            #expect(lines.first?["prevId"] as? String == "n1")
            let rawFormats = try #require(lines.first?["formats"] as? [String: Any])
            #expect(Array(rawFormats.keys) == ["http-stream"])
            #expect((rawFormats["http-stream"] as? [String: Any])?["content"] as? String == "raw")
            let closeFormats = try #require(lines.last?["formats"] as? [String: Any])
            #expect(closeFormats.keys.sorted() == ["http-stream", "ws-message"])
            #expect((closeFormats["ws-message"] as? [String: Any])?["action"] as? String == "close")
        }
    }

    @Test("publish reads the content from stdin for - or no DATA; bytes that are not UTF-8 go as -bin")
    func publishFromStdin() async throws {
        try await withServer { server in
            let text = try await ctl(
                server.args(["publish", "news", "-", "--id", "s1"]),
                input: Array("from stdin".utf8)
            )
            #expect(text.status == 0, "\(text)")
            let binary = try await ctl(
                server.args(["publish", "news", "--id", "s2", "--format", "ws-message"]),
                input: [0xFF, 0x00, 0x01]
            )
            #expect(binary.status == 0, "\(binary)")
            let items = try await historyItems(server)
            let first = try #require(items.first?["formats"] as? [String: Any])
            #expect((first["http-stream"] as? [String: Any])?["content"] as? String == "from stdin\n")
            let second = try #require(items.last?["formats"] as? [String: Any])
            let message = try #require(second["ws-message"] as? [String: Any])
            #expect(message["type"] as? String == "binary")
            #expect(message["content-bin"] as? String == "/wAB")
        }
    }

    @Test("publish and stats have help with an example")
    func help() async throws {
        for command in ["publish", "stats"] {
            let help = try await ctl([command, "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains(":\n  p8ctl \(command) "), "\(command): \(help.stdout)")
            #expect(help.stdout.contains("--url <url>"))
            #expect(help.stdout.contains("--key <key>"))
        }
        let overview = try await ctl(["--help"])
        #expect(overview.stdout.contains("  publish "))
        #expect(overview.stdout.contains("  stats "))
    }

    @Test("replay --publish restores items from another database, ids kept; a second run adds nothing")
    func replayPublish() async throws {
        let backup = try await Fixture.make()
        try await backup.publish("news", count: 5, idPrefix: "n")
        try await withServer { server in
            let arguments = ["replay", "news", "--after", "n2", "--db", backup.path, "--publish", "--url", server.url]
            let replayed = try await ctl(arguments)
            #expect(replayed.status == 0, "\(replayed)")
            #expect(replayed.stdout.hasPrefix("re-published 3 items of \"news\" after \"n2\" to \(server.url)"))
            let again = try await ctl(arguments + ["--json"])
            #expect(again.status == 0, "\(again)")
            #expect(try again.jsonLines().first?["published"] as? Int == 3)

            let lines = try await historyItems(server)
            #expect(lines.map { $0["id"] as? String } == ["n3", "n4", "n5"])
            #expect(lines.map { $0["prevId"] as? String } == ["n2", "n3", "n4"])
            #expect(lines.first?["sequence"] as? Int == 1)
        }
    }

    @Test("replay --publish carries each item's meta, so the restored items keep their filters")
    func replayPublishKeepsMeta() async throws {
        let backup = try await Fixture.make()
        let meta = Data(#"{"skip_users":"u1"}"#.utf8)
        _ = try await backup.store.append([
            NewItem(channel: "news", id: "m0", formats: Data(#"{"http-stream":{"content":"zero\n"}}"#.utf8)),
            NewItem(
                channel: "news",
                id: "m1",
                prevId: "m0",
                formats: Data(#"{"http-stream":{"content":"one\n"}}"#.utf8),
                meta: meta
            ),
            NewItem(
                channel: "news",
                id: "m2",
                prevId: "m1",
                formats: Data(#"{"http-stream":{"content":"two\n"}}"#.utf8)
            ),
        ])
        try await withServer { server in
            let arguments = ["replay", "news", "--after", "m0", "--db", backup.path, "--publish", "--url", server.url]
            let replayed = try await ctl(arguments)
            #expect(replayed.status == 0, "\(replayed)")
            let lines = try await historyItems(server)
            #expect(lines.map { $0["id"] as? String } == ["m1", "m2"])
            #expect(lines.first?["meta"] as? [String: String] == ["skip_users": "u1"])
            #expect(lines.last?["meta"] == nil)
        }
    }

    @Test("stats shows the server's counters; channels gains LIVE only beside the server using its database")
    func statsAndLiveColumn() async throws {
        try await withServer { server in
            #expect(try await ctl(server.args(["publish", "news", "x"])).status == 0)
            let table = try await ctl(server.args(["stats"]))
            #expect(table.status == 0, "\(table)")
            #expect(table.stdoutLines.first?.hasPrefix("COUNTER ") == true, "\(table)")
            #expect(table.stdoutLines.first?.hasSuffix(" VALUE") == true)
            #expect(table.stdoutLines.contains { $0.hasPrefix("items_committed") && $0.hasSuffix(" 1") })
            #expect(table.stdoutLines.last == "no live subscribers")
            let json = try await ctl(server.args(["stats", "--json"]))
            let object = try #require(try json.json() as? [String: Any])
            #expect((object["counters"] as? [String: Int])?["items_received"] == 1)
            #expect(object["channels"] as? [String: Any] != nil)

            let live = try await ctl(server.args(["channels"]))
            #expect(live.status == 0, "\(live)")
            #expect(live.stdoutLines.first?.hasSuffix("  LIVE") == true, "\(live)")
            #expect(live.stdoutLines.last?.hasSuffix("0") == true)
            let liveJSON = try #require(try await ctl(server.args(["channels", "--json"])).json() as? [[String: Any]])
            #expect(liveJSON.first?["subscribers"] as? Int == 0)

            let other = try await Fixture.make()
            try await other.publish("news", count: 1)
            let elsewhere = try await ctl(["channels", "--db", other.path, "--url", server.url])
            #expect(elsewhere.status == 0, "\(elsewhere)")
            #expect(elsewhere.stdoutLines.first?.contains("LIVE") == false)
        }
    }

    @Test("the server down, refusing, or bad arguments: one line on stderr and the documented exit status")
    func errors() async throws {
        let down = "http://127.0.0.1:1"
        for arguments in [["publish", "news", "x", "--url", down], ["stats", "--url", down]] {
            let result = try await ctl(arguments)
            #expect(result.status == 69, "\(result)")
            #expect(result.stderr.hasPrefix("p8ctl: cannot reach the p8 publish API at \(down): "), "\(result)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        for arguments in [
            ["publish"],
            ["publish", "news", "x", "--close"],
            ["publish", "news", "x", "--format", "sse"],
            ["publish", "", "x"],
            ["publish", "news", "x", "--url", "https://127.0.0.1:5561"],
            ["replay", "news", "--publish"],
        ] {
            let result = try await ctl(arguments)
            #expect(result.status == 64, "\(arguments): \(result)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result)")
        }
        try await withServer(config: "[handler]\npush_in_http_key=ctl-secret\n") { server in
            let refused = try await ctl(server.args(["publish", "news", "x"]) + ["--key", "wrong"])
            #expect(refused.status == 77, "\(refused)")
            #expect(refused.stderr.hasPrefix("p8ctl: \(server.url) answered 401: "), "\(refused)")
            // The key comes from the config's push_in_http_key.
            let accepted = try await ctl(server.args(["publish", "news", "x"]))
            #expect(accepted.status == 0, "\(accepted)")
        }
    }
}

/// The items of `news` in the server's database, with their content (`history --json --content`).
private func historyItems(_ server: Server, _ arguments: [String] = []) async throws -> [[String: Any]] {
    let history = try await ctl(server.args(["history", "news", "--json", "--content"] + arguments, url: false))
    let document = try #require(try history.json() as? [String: Any], "\(history)")
    return try #require(document["items"] as? [[String: Any]])
}

/// A running `p8` with its own database, and the arguments that point `p8ctl` at both.
private struct Server {
    var config: String
    var url: String

    /// `arguments` with `--config` (the database, the key) and, when `url`, `--url` (the config's port is 0).
    func args(_ arguments: [String], url: Bool = true) -> [String] {
        arguments + ["--config", self.config] + (url ? ["--url", self.url] : [])
    }
}

private func withServer(config extra: String = "", _ body: (Server) async throws -> Void) async throws {
    let directory = try TemporaryDirectory()
    let config = directory.path("p-8.conf")
    try await withP8Process(writingConfig: config, store: "database_file=p8.sqlite\n", extra: extra) { url in
        try await body(Server(config: config, url: url))
    }
    withExtendedLifetime(directory) {}
}

/// Writes a config to `config` (ephemeral client and publish ports, no ZeroMQ, `extra` sections, then `store` as
/// the `[store]` section), runs a p8 on it and gives `body` its publish API's URL; then stops it with SIGTERM and
/// expects it to exit 0.
func withP8Process(
    writingConfig config: String,
    store: String,
    extra: String = "",
    _ body: (_ publishURL: String) async throws -> Void
) async throws {
    try
        "[global]\nrundir=run\n[runner]\nhttp_port=127.0.0.1:0\n[handler]\npush_in_http_port=0\npush_in_spec=\npush_in_sub_specs=\ncommand_spec=\n\(extra)[store]\n\(store)"
        .write(toFile: config, atomically: true, encoding: .utf8)
    let p8 = try CtlProcess.start(["--config", config, "--route", "* 127.0.0.1:9"], executable: "p8")
    let ready = try await p8.readLines(atLeast: 1).first ?? ""
    guard let publish = ready.split(separator: " ").first(where: { $0.hasPrefix("publish=") }) else {
        p8.signal(SIGKILL)
        throw CtlTestError(description: "no publish address in the readiness line \"\(ready)\"")
    }
    do {
        try await body("http://\(publish.dropFirst("publish=".count))")
    } catch {
        p8.signal(SIGKILL)
        _ = try? await p8.waitForExit()
        throw error
    }
    p8.signal(SIGTERM)
    #expect(try await p8.waitForExit() == 0)
}
