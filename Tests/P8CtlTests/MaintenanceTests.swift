import Foundation
import P8TestSupport
import Store
import Testing

/// `trim` and `backup`: the commands that write.
@Suite("p8ctl trim and backup", .timeLimit(.minutes(1)))
struct MaintenanceTests {
    @Test("trim --keep removes the oldest items of one channel; sequences are never reused")
    func trimKeep() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 5, idPrefix: "n")
        try await fixture.publish("chat", count: 3, idPrefix: "c")

        let result = try await ctl(["trim", "news", "--keep", "2", "--db", fixture.path])
        #expect(result.status == 0, "\(result)")
        #expect(
            result.stdoutLines == [
                "CHANNEL  REMOVED  BYTES  THROUGH-SEQ  REMAINING",
                "news           3  114 B            3          2",
                "removed 3 items (114 B) from 1 channel",
            ]
        )
        #expect(try await fixture.store.read(channel: "news", after: .oldestRetained).items?.map(\.id) == ["n4", "n5"])
        #expect(try await fixture.store.read(channel: "chat", after: .oldestRetained).items?.count == 3)
        // The server (here, the fixture's store) goes on appending after the trim, with the next sequence.
        let next = try await fixture.publish("news", count: 1, idPrefix: "n")
        #expect(next.map(\.sequence) == [6])

        let again = try await ctl(["trim", "news", "--keep", "5", "--db", fixture.path])
        #expect(again.status == 0)
        #expect(again.stdout == "nothing to remove\n")
        let unknown = try await ctl(["trim", "sports", "--keep", "1", "--db", fixture.path])
        #expect(unknown.status == 2)
        #expect(unknown.stderr == "p8ctl: unknown channel \"sports\": nothing was ever published to it here\n")
    }

    @Test("trim --all --before removes items published before a time, in every channel; JSON summary")
    func trimAllBefore() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 4, idPrefix: "n")
        try await fixture.publish("chat", count: 2, idPrefix: "c", start: fixtureTime.addingTimeInterval(10))

        let result = try await ctl([
            "trim", "--all", "--before", "2026-11-24T21:00:02Z", "--db", fixture.path, "--json",
        ])
        #expect(result.status == 0, "\(result)")
        let document = try #require(try result.json() as? [String: Any])
        #expect(document["removedItems"] as? Int == 2)
        let channels = try #require(document["channels"] as? [[String: Any]])
        #expect(channels.map { $0["name"] as? String } == ["news"])
        #expect(channels[0]["throughSequence"] as? Int == 2)
        #expect(channels[0]["remainingItems"] as? Int == 2)

        let everything = try await ctl(["trim", "--all", "--keep", "0", "--db", fixture.path])
        #expect(everything.status == 0)
        #expect(everything.stdoutLines.last == "removed 4 items (152 B) from 2 channels")
        let channelsAfter = try await ctl(["channels", "--db", fixture.path, "--json"])
        let summaries = try #require(try channelsAfter.json() as? [[String: Any]])
        #expect(summaries.map { $0["items"] as? Int } == [0, 0])
        #expect(summaries.map { $0["lastSequence"] as? Int } == [2, 4])
        #expect(try await ctl(["history", "news", "--db", fixture.path, "--after-seq", "2"]).status == 3)
        #expect(try await ctl(["history", "news", "--db", fixture.path, "--after-seq", "4"]).stdout == "no items\n")
    }

    @Test("backup: a consistent copy with a new epoch; refuses to overwrite without --force")
    func backup() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 3, idPrefix: "n")
        let destination = fixture.directory.path("copy.sqlite")

        let result = try await ctl(["backup", destination, "--db", fixture.path])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.hasPrefix("backed up \(fixture.path) to \(destination): "))
        #expect(result.stdout.contains("1 channel, 3 items, new epoch "))
        // One self-contained file.
        #expect(!FileManager.default.fileExists(atPath: destination + "-wal"))
        let copy = try await ChannelStore.openReadOnly(path: destination, logger: testLogger)
        #expect(copy.epoch != fixture.store.epoch)
        #expect(result.stdout.hasSuffix("new epoch \(copy.epoch)\n"))
        #expect(try await copy.read(channel: "news", after: .oldestRetained).items?.map(\.id) == ["n1", "n2", "n3"])

        try await fixture.publish("news", count: 1, idPrefix: "n")
        let refused = try await ctl(["backup", destination, "--db", fixture.path])
        #expect(refused.status == 73)
        #expect(refused.stderr == "p8ctl: \(destination) exists: pass --force to overwrite it\n")
        let forced = try await ctl(["backup", destination, "--force", "--db", fixture.path, "--json"])
        #expect(forced.status == 0, "\(forced)")
        let document = try #require(try forced.json() as? [String: Any])
        #expect(document["items"] as? Int == 4)
        #expect(document["destination"] as? String == destination)

        let itself = try await ctl(["backup", fixture.path, "--force", "--db", fixture.path])
        #expect(itself.status == 73)
        let noDirectory = try await ctl(["backup", fixture.directory.path("no/such/dir.sqlite"), "--db", fixture.path])
        #expect(noDirectory.status == 73)
        #expect(noDirectory.stderr.hasPrefix("p8ctl: cannot write "))
    }
}
