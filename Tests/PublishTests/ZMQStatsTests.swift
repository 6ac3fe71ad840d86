import GRIP
import Publish
import Testing

@Suite("ZeroMQ stats socket", .timeLimit(.minutes(1)))
struct ZMQStatsTests {
    /// Receives until a message of `type` arrives; returns its format byte and payload.
    static func next(_ type: String, from socket: TestSocket) async throws -> (UInt8, [UInt8])? {
        let prefix = Array("\(type) ".utf8)
        while let frames = try await socket.receive() {
            guard frames.count == 1, frames[0].starts(with: prefix), frames[0].count > prefix.count else { continue }
            return (frames[0][prefix.count], Array(frames[0][(prefix.count + 1)...]))
        }
        return nil
    }

    static func subscriber(_ harness: ZeroMQHarness) async throws -> TestSocket {
        let socket = try TestSocket(.sub, connect: harness.endpoints.stats, context: harness.context)
        try socket.socket.subscribe([])
        // Until the subscription reaches the PUB socket, its messages are not sent to this one; reports (every
        // second) show when it has.
        _ = try await Self.next("report", from: socket)
        return socket
    }

    @Test("sub messages in tnetstring when a channel gains and loses subscribers; reports every interval")
    func tnetstring() async throws {
        try await withZeroMQ { harness in
            let stats = try await Self.subscriber(harness)
            let (session, _) = await harness.hold(["kach"])
            let (format, payload) = try #require(try await Self.next("sub", from: stats))
            #expect(format == UInt8(ascii: "T"))
            let sub = try TNetString.decode(payload)
            #expect(sub["channel"] == .string("kach"))
            #expect(sub["mode"] == .string("stream"))
            #expect(sub["subscribers"] == .int(1))
            #expect(sub["ttl"] == .int(60))
            guard case .bytes(let from)? = sub["from"] else {
                Issue.record("no from in \(sub)")
                return
            }
            #expect(String(decoding: from, as: UTF8.self).hasPrefix("p8-handler_"))

            session.end()
            let (_, gone) = try #require(try await Self.next("sub", from: stats))
            let unsub = try TNetString.decode(gone)
            #expect(unsub["channel"] == .string("kach"))
            #expect(unsub["unavailable"] == .bool(true))

            let (_, reportPayload) = try #require(try await Self.next("report", from: stats))
            let report = try TNetString.decode(reportPayload)
            for field in ["connections", "minutes", "received", "sent", "duration"] {
                #expect(report[field] != nil, "\(field) missing from \(report)")
            }
        }
    }

    @Test("stats_format=json sends J and JSON")
    func json() async throws {
        let json: (inout HandlerConfiguration) -> Void = { $0.statsFormat = .json }
        try await withZeroMQ(json) { harness in
            let stats = try await Self.subscriber(harness)
            let (session, _) = await harness.hold(["js"], mode: .response)
            defer { session.end() }
            let (format, payload) = try #require(try await Self.next("sub", from: stats))
            #expect(format == UInt8(ascii: "J"))
            guard case .object(let sub)? = JSONValue.parse(payload) else {
                Issue.record("not a JSON object: \(String(decoding: payload, as: UTF8.self))")
                return
            }
            #expect(sub["channel"] == .string("js"))
            #expect(sub["mode"] == .string("response"))
            #expect(sub["subscribers"] == .int(1))
        }
    }

    @Test("the frame layout is <type> <format byte><payload>")
    func frameLayout() {
        let fields = [TNetString.Member("count", .int(2))]
        #expect(
            ZMQStatsPublisher.frame(type: "activity", fields: fields, format: .tnetstring)
                == Array("activity T12:5:count,1:2#}".utf8)
        )
        #expect(
            ZMQStatsPublisher.frame(type: "activity", fields: fields, format: .json)
                == Array(#"activity J{"count":2}"#.utf8)
        )
    }
}
