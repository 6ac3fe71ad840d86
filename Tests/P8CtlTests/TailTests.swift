import Foundation
import P8TestSupport
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `tail`: follows items as the server commits them, and stops cleanly on a signal.
@Suite("p8ctl tail", .timeLimit(.minutes(1)))
struct TailTests {
    @Test("prints recent items, then new ones as they are committed; SIGTERM exits 0")
    func followsAndStopsOnSigterm() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 4, idPrefix: "n")
        let tail = try CtlProcess.start(["tail", "news", "chat", "--lines", "2", "--db", fixture.path])
        let first = try await tail.readLines(atLeast: 2)
        #expect(first.count == 2)
        #expect(first.first?.hasPrefix("2026-11-24 21:00:02  news  #3  n3  ") == true)

        try await fixture.publish("chat", count: 1, idPrefix: "c", start: Date())
        try await fixture.publish("news", count: 1, idPrefix: "n", start: Date().addingTimeInterval(1))
        let lines = try await tail.readLines(atLeast: 4)
        #expect(lines.count == 4)
        #expect(lines.dropFirst(2).map { $0.split(separator: " ")[2] } == ["chat", "news"])
        #expect(lines[3].contains("#5  n5  "))
        #expect(lines[3].hasSuffix(#"{"http-stream":{"content":"item 5\n"}}"#))

        tail.signal(SIGTERM)
        #expect(try await tail.waitForExit() == 0)
    }

    @Test("--from-now --json: NDJSON of new items only; SIGINT exits 0")
    func fromNowJSONAndSigint() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 3, idPrefix: "n")
        let tail = try CtlProcess.start(["tail", "news", "--from-now", "--json", "--db", fixture.path])
        // Publish until tail shows something: items committed before it started are not shown. (Bounded by the
        // one wait limit, not by a number of tries a slow start of the child process can outlast.)
        let showsSomething = try await eventually {
            try await fixture.publish("news", count: 1, idPrefix: "n")
            return !(try await tail.readLines(atLeast: 1, timeout: .milliseconds(300)).isEmpty)
        }
        #expect(showsSomething)
        try await fixture.publish("news", count: 1, idPrefix: "n")
        let last = try await fixture.store.newest(channel: "news")?.sequence ?? 0
        let shown = try await tail.readLines { $0.last?.contains("\"sequence\":\(last),") == true }
        let objects = try shown.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let sequences = objects.compactMap { $0["sequence"] as? Int }
        #expect(sequences.count == objects.count)
        #expect(sequences.first.map { $0 > 3 } == true, "\(sequences)")
        #expect(sequences.last == Int(last))
        #expect(sequences == Array((sequences.first ?? 0)...(sequences.last ?? 0)))
        #expect(objects.last?["id"] as? String == "n\(last)")
        tail.signal(SIGINT)
        #expect(try await tail.waitForExit() == 0)
    }

    @Test("a missing database exits 66 at once")
    func missingDatabase() async throws {
        let result = try await ctl(["tail", "news", "--db", "/nonexistent/p8.sqlite"])
        #expect(result.status == 66)
    }
}
