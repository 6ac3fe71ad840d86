import GRIP
import Publish
import Testing

@Suite("ZeroMQ command socket", .timeLimit(.minutes(1)))
struct ZMQCommandTests {
    /// Sends one request from a REQ socket and decodes the reply.
    static func call(_ request: TNetString, _ harness: ZeroMQHarness) async throws -> TNetString {
        let client = try TestSocket(.req, connect: harness.endpoints.command, context: harness.context)
        try await client.send([request.encoded()])
        let reply = try #require(try await client.receive())
        #expect(reply.count == 1)
        return try TNetString.decode(reply[0])
    }

    static func request(_ method: String, id: String? = "r1", args: [TNetString.Member]? = nil) -> TNetString {
        var members: [TNetString.Member] = []
        if let id {
            members.append(TNetString.Member("id", .string(id)))
        }
        members.append(TNetString.Member("method", .string(method)))
        if let args {
            members.append(TNetString.Member("args", .dict(args)))
        }
        return .dict(members)
    }

    static func success(_ value: TNetString, id: String = "r1") -> TNetString {
        .dict([
            TNetString.Member("id", .string(id)),
            TNetString.Member("success", .bool(true)),
            TNetString.Member("value", value),
        ])
    }

    static func failure(_ condition: String, value: TNetString? = nil, id: String? = "r1") -> TNetString {
        var members: [TNetString.Member] = []
        if let id {
            members.append(TNetString.Member("id", .string(id)))
        }
        members.append(TNetString.Member("success", .bool(false)))
        members.append(TNetString.Member("condition", .string(condition)))
        if let value {
            members.append(TNetString.Member("value", value))
        }
        return .dict(members)
    }

    @Test("publish commits the items before it answers")
    func publish() async throws {
        try await withZeroMQ { harness in
            let items = TNetString.list([
                streamItem(channel: "cmd", content: "a\n"), streamItem(channel: "cmd", content: "b\n"),
            ])
            let reply = try await Self.call(Self.request("publish", args: [TNetString.Member("items", items)]), harness)
            #expect(reply == Self.success(.null))
            #expect(try await harness.stored("cmd").map(storedContent) == ["a\n", "b\n"])
        }
    }

    @Test("publish with a bad item is a bad-request and publishes nothing")
    func publishBadItem() async throws {
        try await withZeroMQ { harness in
            let items = TNetString.list([
                streamItem(channel: "bad", content: "a\n"),
                .dict([TNetString.Member("channel", .string("bad"))]),
            ])
            let reply = try await Self.call(Self.request("publish", args: [TNetString.Member("items", items)]), harness)
            #expect(
                reply == Self.failure("bad-request", value: .string("Invalid format: items[1]: no formats specified"))
            )
            let missing = try await Self.call(Self.request("publish", args: []), harness)
            #expect(
                missing
                    == Self.failure("bad-request", value: .string("Invalid format: object does not contain 'items'"))
            )
            #expect(try await harness.stored("bad").isEmpty)
        }
    }

    @Test("recover, conncheck, refresh and get-zmq-uris answer as Pushpin's")
    func otherMethods() async throws {
        try await withZeroMQ { harness in
            #expect(try await Self.call(Self.request("recover"), harness) == Self.success(.null))

            let (session, _) = await harness.hold(["cc"])
            defer { session.end() }
            let ids = TNetString.list([.string("gone"), .string(session.id)])
            let conncheck = try await Self.call(
                Self.request("conncheck", args: [TNetString.Member("ids", ids)]),
                harness
            )
            #expect(conncheck == Self.success(.list([.string(session.id)])))
            #expect(try await Self.call(Self.request("conncheck", args: []), harness) == Self.failure("bad-request"))

            let refreshCID = Self.request("refresh", args: [TNetString.Member("cid", .string("nope"))])
            #expect(try await Self.call(refreshCID, harness) == Self.failure("item-not-found"))
            let refreshChannel = Self.request("refresh", args: [TNetString.Member("channel", .string("cc"))])
            #expect(try await Self.call(refreshChannel, harness) == Self.success(.null))
            #expect(try await Self.call(Self.request("refresh"), harness) == Self.failure("bad-request"))

            let uris = try await Self.call(Self.request("get-zmq-uris"), harness)
            let endpoints = harness.endpoints
            #expect(
                uris
                    == Self.success(
                        .dict([
                            TNetString.Member("command", .string(try #require(endpoints.command))),
                            TNetString.Member("publish-pull", .string(try #require(endpoints.pull))),
                            TNetString.Member("publish-sub", .string(try #require(endpoints.sub.first))),
                        ])
                    )
            )
        }
    }

    @Test("unknown methods and malformed requests get failures, without and with an id")
    func errors() async throws {
        try await withZeroMQ { harness in
            #expect(try await Self.call(Self.request("report"), harness) == Self.failure("method-not-found"))
            let withoutID = try await Self.call(Self.request("recover", id: nil), harness)
            #expect(withoutID == .dict([TNetString.Member("success", .bool(true)), TNetString.Member("value", .null)]))
            let client = try TestSocket(.req, connect: harness.endpoints.command, context: harness.context)
            try await client.send("not a tnetstring")
            let reply = try #require(try await client.receive())
            #expect(try TNetString.decode(reply[0]) == Self.failure("bad-request", id: nil))
            #expect(harness.malformedFrames == 1)
        }
    }

    @Test("a DEALER client can pipeline requests and match replies by id")
    func dealer() async throws {
        try await withZeroMQ { harness in
            let client = try TestSocket(.dealer, connect: harness.endpoints.command, context: harness.context)
            try await client.send([[], Self.request("recover", id: "one").encoded()])
            try await client.send([[], Self.request("nope", id: "two").encoded()])
            let first = try #require(try await client.receive())
            let second = try #require(try await client.receive())
            #expect(first.first == [] && second.first == [])
            #expect(try TNetString.decode(first[1]) == Self.success(.null, id: "one"))
            #expect(try TNetString.decode(second[1]) == Self.failure("method-not-found", id: "two"))
        }
    }
}
