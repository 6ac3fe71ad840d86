import Foundation
import P8TestSupport
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `p8ctl` beside a running `p8` that has the database open.
@Suite("p8ctl with a running p8", .timeLimit(.minutes(1)))
struct RunningServerTests {
    @Test("held shows the earlier run's holds orphaned by p8; trim, backup and history work while it runs")
    func besideARunningServer() async throws {
        let fixture = try await Fixture.make()
        try await fixture.publish("news", count: 5, idPrefix: "n", start: Date())
        try await fixture.store.recordHolds(upserts: [
            HoldRecord(
                id: "h1",
                instance: "earlier-run",
                mode: .response,
                route: "api",
                clientAddress: "192.0.2.1:4000",
                channels: [HoldRecord.Channel(name: "news", lastId: "n3", lastSequence: 3)]
            )
        ])
        let config = fixture.directory.path("p-8.conf")
        let text =
            "[global]\nrundir=run\n[runner]\nhttp_port=127.0.0.1:0\n[handler]\npush_in_http_port=0\npush_in_spec=\npush_in_sub_specs=\ncommand_spec=\n"
            + "[store]\ndatabase_file=p8.sqlite\n"
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let p8 = try CtlProcess.start(["--config", config, "--route", "* 127.0.0.1:9"], executable: "p8")
        let ready = try await p8.readLines(atLeast: 1)
        #expect(ready.first?.hasPrefix("p8 ready http=127.0.0.1:") == true, "\(ready)")

        // p8 marked the earlier run's hold orphaned at start-up.
        let held = try await ctl(["held", "--config", config])
        #expect(held.status == 0, "\(held)")
        #expect(held.stdoutLines.count == 2)
        #expect(held.stdoutLines.last?.hasPrefix("h1  response  api    192.0.2.1:4000  news@3 (2 behind)") == true)
        #expect(held.stdoutLines.last?.contains("orphaned") == true)

        let trim = try await ctl(["trim", "news", "--keep", "2", "--config", config])
        #expect(trim.status == 0, "\(trim)")
        #expect(trim.stdoutLines.last == "removed 3 items (114 B) from 1 channel")

        // Items committed meanwhile (here by the test, standing in for the publish API) are seen at once.
        try await fixture.publish("news", count: 1, idPrefix: "n", start: Date())
        let history = try await ctl(["history", "news", "--config", config, "--after-seq", "3"])
        #expect(history.status == 0, "\(history)")
        #expect(history.stdoutLines.dropFirst().map { $0.split(separator: " ")[1] } == ["n4", "n5", "n6"])

        let backup = try await ctl(["backup", fixture.directory.path("copy.sqlite"), "--config", config])
        #expect(backup.status == 0, "\(backup)")
        #expect(backup.stdout.contains("1 channel, 3 items"))

        p8.signal(SIGTERM)
        #expect(try await p8.waitForExit() == 0)
    }
}
