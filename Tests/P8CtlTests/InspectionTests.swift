import Foundation
import GRIP
import P8TestSupport
import Store
import Testing

/// `channels`, `history`, `held`, `replay`, `export`: read-only commands against a database P-8's store wrote.
@Suite("p8ctl inspection commands", .timeLimit(.minutes(1)))
struct InspectionTests {
    @Test("channels: a table for people, JSON for scripts, --prefix")
    func channels() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 3, idPrefix: "n")
        try await fixture.publish("chat.room1", count: 2)
        _ = try await fixture.store.trim(channel: "chat.room1", rule: .keepNewest(0))

        let table = try await ctl(["channels", "--db", fixture.path])
        #expect(table.status == 0, "\(table)")
        #expect(table.stderr.isEmpty)
        let lines = table.stdoutLines
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("CHANNEL     ITEMS  BYTES  LAST-SEQ  OLDEST"))
        #expect(lines[1].hasPrefix("chat.room1      0    0 B         2  -       -"))
        #expect(lines[2].contains("news            3"))
        #expect(lines[2].contains("#1 n1"))
        #expect(lines[2].contains("#3 n3"))
        #expect(lines[2].contains("2026-11-24 21:00:02"))
        #expect(lines[2].hasSuffix("ago"))

        let json = try await ctl(["channels", "--db", fixture.path, "--json"])
        #expect(json.status == 0)
        let channels = try #require(try json.json() as? [[String: Any]])
        #expect(channels.map { $0["name"] as? String } == ["chat.room1", "news"])
        #expect(channels[0]["items"] as? Int == 0)
        #expect(channels[0]["lastSequence"] as? Int == 2)
        #expect(channels[0]["oldest"] is NSNull)
        let newest = try #require(channels[1]["newest"] as? [String: Any])
        #expect(newest["id"] as? String == "n3")
        #expect(newest["sequence"] as? Int == 3)
        #expect(channels[1]["lastPublishedAt"] as? String == "2026-11-24T21:00:02.000Z")

        let prefixed = try await ctl(["channels", "--db", fixture.path, "--prefix", "chat."])
        #expect(prefixed.stdoutLines.count == 2)
        let none = try await ctl(["channels", "--db", fixture.path, "--prefix", "zzz"])
        #expect(none.status == 0)
        #expect(none.stdout == "no channels starting with \"zzz\"\n")
    }

    @Test("works on a database whose server has stopped (no process has it open)")
    func serverDown() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("p8.sqlite")
        try await Self.writeAndClose(path)
        let channels = try await ctl(["channels", "--db", path])
        #expect(channels.status == 0, "\(channels)")
        #expect(channels.stdoutLines.count == 2)
        let history = try await ctl(["history", "news", "--db", path, "--json"])
        let document = try #require(try history.json() as? [String: Any])
        #expect((document["items"] as? [Any])?.count == 2)
    }

    /// Writes two items as a server would, then closes the database.
    private static func writeAndClose(_ path: String) async throws {
        let store = try await ChannelStore.open(
            configuration: StoreConfiguration(databaseFile: path),
            logger: testLogger
        )
        _ = try await store.append([
            NewItem(channel: "news", formats: Data("a".utf8)), NewItem(channel: "news", formats: Data("b".utf8)),
        ])
    }

    @Test("history: every retained item, after an id, a sequence or a time, with a limit and content")
    func history() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 5, idPrefix: "n")

        let all = try await ctl(["history", "news", "--db", fixture.path])
        #expect(all.status == 0, "\(all)")
        #expect(all.stdoutLines.count == 6)
        #expect(all.stdoutLines[0].hasPrefix("SEQ  ID  PREV-ID  PUBLISHED            AGE"))
        #expect(all.stdoutLines[1].hasPrefix("  1  n1  -        2026-11-24 21:00:00"))
        #expect(all.stdoutLines[2].hasPrefix("  2  n2  n1       2026-11-24 21:00:01"))
        #expect(!all.stdout.contains("CONTENT"))

        let after = try await ctl(["history", "news", "--db", fixture.path, "--after", "n3"])
        #expect(after.stdoutLines.dropFirst().map { $0.split(separator: " ")[1] } == ["n4", "n5"])
        let afterSequence = try await ctl(["history", "news", "--db", fixture.path, "--after-seq", "4"])
        #expect(afterSequence.stdoutLines.dropFirst().map { $0.split(separator: " ")[1] } == ["n5"])
        let since = try await ctl(["history", "news", "--db", fixture.path, "--since", "2026-11-24 21:00:03"])
        #expect(since.stdoutLines.dropFirst().map { $0.split(separator: " ")[1] } == ["n4", "n5"])
        let rfc3339 = try await ctl(["history", "news", "--db", fixture.path, "--since", "2026-11-24T22:00:04+01:00"])
        #expect(rfc3339.stdoutLines.dropFirst().map { $0.split(separator: " ")[1] } == ["n5"])
        for (since, ids) in [
            ("2026-11-24", ["n1", "n2", "n3", "n4", "n5"]), ("2026-11-24T21:00:03.500Z", ["n5"]),
            ("2026-11-24t21:00:04z", ["n5"]), ("2026-11-24 21:01", []), ("100000d", ["n1", "n2", "n3", "n4", "n5"]),
        ] {
            let result = try await ctl(["history", "news", "--db", fixture.path, "--since", since, "--json"])
            let document = try #require(try result.json() as? [String: Any], "\(since): \(result)")
            #expect((document["items"] as? [[String: Any]])?.map { $0["id"] as? String } == ids, "\(since)")
        }
        let limited = try await ctl(["history", "news", "--db", fixture.path, "--limit", "2", "--content"])
        #expect(limited.stdoutLines.count == 3)
        #expect(limited.stdoutLines[0].hasSuffix("CONTENT"))
        #expect(limited.stdoutLines[1].hasSuffix(#"{"http-stream":{"content":"item 1\n"}}"#))
        let newest = try await ctl(["history", "news", "--db", fixture.path, "--after", "n5"])
        #expect(newest.status == 0)
        #expect(newest.stdout == "no items\n")

        let json = try await ctl(["history", "news", "--db", fixture.path, "--after", "n3", "--content", "--json"])
        #expect(json.status == 0)
        let document = try #require(try json.json() as? [String: Any])
        #expect(document["channel"] as? String == "news")
        #expect(document["epoch"] as? String == fixture.store.epoch)
        #expect(document["lastSequence"] as? Int == 5)
        let items = try #require(document["items"] as? [[String: Any]])
        #expect(items.map { $0["id"] as? String } == ["n4", "n5"])
        #expect(items[0]["prevId"] as? String == "n3")
        #expect(items[0]["sequence"] as? Int == 4)
        #expect(items[0]["publishedAt"] as? String == "2026-11-24T21:00:03.000Z")
        let formats = try #require(items[0]["formats"] as? [String: Any])
        #expect((formats["http-stream"] as? [String: Any])?["content"] as? String == "item 4\n")
    }

    @Test("history: a trimmed cursor exits 3, an unknown cursor 4, an unknown channel 2")
    func historyCursorErrors() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 5, idPrefix: "n")
        let assigned = try await fixture.publish("plain", count: 4)
        _ = try await fixture.store.trim(channel: nil, rule: .keepNewest(2))

        let tooOld = try await ctl(["history", "news", "--db", fixture.path, "--after-seq", "1"])
        #expect(tooOld.status == 3, "\(tooOld)")
        #expect(tooOld.stdout.isEmpty)
        #expect(
            tooOld.stderr
                == "p8ctl: sequence 1 on channel \"news\" is older than what is retained (the oldest retained item "
                + "is #4, id n4): items after it have been trimmed, reading from it would skip them\n"
        )
        // The oldest retained item's predecessor is still a good cursor.
        let justRetained = try await ctl(["history", "news", "--db", fixture.path, "--after-seq", "3"])
        #expect(justRetained.status == 0)
        #expect(justRetained.stdoutLines.count == 3)
        // An id P-8 assigned is known even once trimmed: too old (3), or still a good cursor.
        let trimmedAssigned = try await ctl(["history", "plain", "--db", fixture.path, "--after", assigned[0].id])
        #expect(trimmedAssigned.status == 3, "\(trimmedAssigned)")
        #expect(trimmedAssigned.stderr.contains("the oldest retained item is #3"))
        let lastTrimmed = try await ctl(["history", "plain", "--db", fixture.path, "--after", assigned[1].id, "--json"])
        #expect(lastTrimmed.status == 0)
        let document = try #require(try lastTrimmed.json() as? [String: Any])
        #expect((document["items"] as? [[String: Any]])?.map { $0["sequence"] as? Int } == [3, 4])
        let tooOldJSON = try await ctl(["history", "plain", "--db", fixture.path, "--after", assigned[0].id, "--json"])
        #expect(tooOldJSON.status == 3)
        #expect(tooOldJSON.stdout.isEmpty)

        // A publisher's id is looked up among retained items only: once trimmed, it is unknown (4), as a never
        // published one.
        let trimmedID = try await ctl(["history", "news", "--db", fixture.path, "--after", "n1"])
        #expect(trimmedID.status == 4, "\(trimmedID)")
        let unknown = try await ctl(["history", "news", "--db", fixture.path, "--after", "nope"])
        #expect(unknown.status == 4)
        #expect(
            unknown.stderr
                == "p8ctl: id \"nope\" is not a retained item of channel \"news\" in this database (epoch "
                + "\(fixture.store.epoch)): never published here, or trimmed since; reading from it could skip items\n"
        )
        let beyond = try await ctl(["history", "news", "--db", fixture.path, "--after-seq", "99"])
        #expect(beyond.status == 4)
        #expect(beyond.stderr.hasPrefix("p8ctl: sequence 99 is after the newest item of channel \"news\" (sequence 5)"))

        let channel = try await ctl(["history", "sports", "--db", fixture.path])
        #expect(channel.status == 2)
        #expect(channel.stderr == "p8ctl: unknown channel \"sports\": nothing was ever published to it here\n")
    }

    @Test("held: id, mode, route, client, channels with position and lag, age, orphans flagged")
    func held() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 7, idPrefix: "n")
        let started = Date().addingTimeInterval(-125)
        try await fixture.store.recordHolds(upserts: [
            HoldRecord(
                id: "h-old",
                instance: "run-1",
                mode: .stream,
                route: "api",
                clientAddress: "192.0.2.1:4000",
                channels: [HoldRecord.Channel(name: "news", lastId: "n4", lastSequence: 4)],
                startedAt: started.addingTimeInterval(-60)
            ),
            HoldRecord(
                id: "h-new",
                instance: "run-2",
                mode: .webSocket,
                clientAddress: "198.51.100.7:5000",
                channels: [
                    HoldRecord.Channel(name: "news", lastId: "n7", lastSequence: 7),
                    HoldRecord.Channel(name: "chat", lastId: "c9"),
                ],
                startedAt: started
            ),
        ])
        _ = try await fixture.store.markOrphans(currentInstance: "run-2")

        let table = try await ctl(["held", "--db", fixture.path])
        #expect(table.status == 0, "\(table)")
        let lines = table.stdoutLines
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("ID     MODE       ROUTE  CLIENT             CHANNELS"))
        #expect(lines[1].hasPrefix("h-old  stream     api    192.0.2.1:4000     news@4 (3 behind)"))
        #expect(lines[1].contains("3m ago"))
        // Orphaned seconds ago: how many depends on how long the command took to start.
        let orphaned = lines[1].split(separator: " ").suffix(3).map(String.init)
        #expect(orphaned.count == 3 && orphaned[0] == "orphaned" && orphaned[1].hasSuffix("s") && orphaned[2] == "ago")
        #expect(lines[2].hasPrefix("h-new  websocket  -      198.51.100.7:5000  news@7, chat@c9"))
        #expect(lines[2].contains("2m ago"))
        #expect(lines[2].hasSuffix("held"))

        let filtered = try await ctl(["held", "--db", fixture.path, "--channel", "chat"])
        #expect(filtered.stdoutLines.count == 2)
        #expect(filtered.stdoutLines[1].hasPrefix("h-new"))
        let none = try await ctl(["held", "--db", fixture.path, "--channel", "sports"])
        #expect(none.status == 0)
        #expect(none.stdout == "no held requests on \"sports\"\n")

        let json = try await ctl(["held", "--db", fixture.path, "--json"])
        let holds = try #require(try json.json() as? [[String: Any]])
        #expect(holds.map { $0["id"] as? String } == ["h-old", "h-new"])
        #expect(holds.map { $0["orphaned"] as? Bool } == [true, false])
        #expect(holds[0]["mode"] as? String == "stream")
        #expect(holds[1]["route"] is NSNull)
        let channels = try #require(holds[0]["channels"] as? [[String: Any]])
        #expect(channels[0]["behind"] as? Int == 3)
        #expect(channels[0]["newestSequence"] as? Int == 7)
        let websocketChannels = try #require(holds[1]["channels"] as? [[String: Any]])
        #expect(websocketChannels[1]["behind"] is NSNull)
    }

    @Test("replay: the items a client missed, with content; NDJSON with --json; errors as history")
    func replay() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 4, idPrefix: "n")

        let table = try await ctl(["replay", "news", "--after", "n2", "--db", fixture.path])
        #expect(table.status == 0, "\(table)")
        #expect(table.stdoutLines.count == 3)
        #expect(table.stdoutLines[0].hasSuffix("CONTENT"))
        #expect(table.stdoutLines[1].contains(#""item 3\n""#))

        let json = try await ctl(["replay", "news", "--after", "n2", "--db", fixture.path, "--json"])
        let lines = try json.jsonLines()
        #expect(lines.map { $0["id"] as? String } == ["n3", "n4"])
        #expect(lines[0]["formats"] is [String: Any])

        let nothing = try await ctl(["replay", "news", "--after", "n4", "--db", fixture.path])
        #expect(nothing.stdout == "nothing missed: \"n4\" is the newest item of \"news\"\n")
        #expect(try await ctl(["replay", "news", "--after", "zz", "--db", fixture.path]).status == 4)
        let missing = try await ctl(["replay", "news", "--db", fixture.path])
        #expect(missing.status == 64)
        #expect(missing.stderr == "p8ctl: give one of --after ID and --from-oldest (see 'p8ctl replay --help')\n")
    }

    @Test("export: NDJSON of every retained item, or one channel's; text and binary content")
    func export() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("b", count: 2, idPrefix: "b")
        try await fixture.publish("a", count: 1, content: { _ in "plain\ntext" })
        _ = try await fixture.store.append([NewItem(channel: "c", id: "bin", formats: Data([0xFF, 0x00, 0x01]))])

        let all = try await ctl(["export", "--db", fixture.path])
        #expect(all.status == 0, "\(all)")
        let lines = try all.jsonLines()
        #expect(lines.map { "\($0["channel"] ?? "")/\($0["sequence"] ?? "")" } == ["a/1", "b/1", "b/2", "c/1"])
        #expect(lines[0]["formatsText"] as? String == "plain\ntext")
        #expect(lines[3]["formatsBase64"] as? String == "/wAB")
        #expect(lines[2]["prevId"] as? String == "b1")

        let one = try await ctl(["export", "b", "--db", fixture.path])
        #expect(try one.jsonLines().map { $0["id"] as? String } == ["b1", "b2"])
        let unknown = try await ctl(["export", "zz", "--db", fixture.path])
        #expect(unknown.status == 2)
        #expect(unknown.stdout.isEmpty)
    }
}
