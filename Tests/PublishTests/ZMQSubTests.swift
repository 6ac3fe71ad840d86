import GRIP
import Publish
import Testing

@Suite("ZeroMQ SUB publish input", .timeLimit(.minutes(1)))
struct ZMQSubTests {
    @Test("the SUB socket subscribes to a channel while it has subscribers; the topic frame is the channel")
    func followsSubscribers() async throws {
        try await withZeroMQ { harness in
            // An XPUB publisher sees the SUB socket's subscriptions come and go.
            let publisher = try TestSocket(.xpub, connect: harness.endpoints.sub.first, context: harness.context)
            let (session, connection) = await harness.hold(["news"])
            let subscribe = try await publisher.receive()
            #expect(subscribe == [[1] + Array("news".utf8)])

            try await publisher.send([Array("news".utf8), streamItem(channel: "ignored", content: "n1\n").encoded()])
            #expect(try await connection.streamed(until: "n1\n") == "n1\n")
            #expect(try await harness.stored("news").map(storedContent) == ["n1\n"])
            #expect(try await harness.stored("ignored").isEmpty)

            session.end()
            let unsubscribe = try await publisher.receive()
            #expect(unsubscribe == [[0] + Array("news".utf8)])
        }
    }

    @Test("malformed SUB messages are counted and skipped")
    func malformed() async throws {
        try await withZeroMQ { harness in
            let publisher = try TestSocket(.xpub, connect: harness.endpoints.sub.first, context: harness.context)
            let (session, connection) = await harness.hold(["s"])
            defer { session.end() }
            _ = try await publisher.receive()
            try await publisher.send([Array("s".utf8)])
            try await publisher.send([Array("s".utf8), Array("Jnot json".utf8)])
            try await publisher.send([Array("s".utf8), [1], [2]])
            try await publisher.send([Array("s".utf8), streamItem(channel: nil, content: "ok\n").encoded()])
            #expect(try await connection.streamed(until: "ok\n") == "ok\n")
            #expect(harness.malformedFrames == 3)
        }
    }

    @Test("with push_in_sub_connect the SUB socket connects to the publishers")
    func connects() async throws {
        let context = try ZMQContext()
        let publisher = try TestSocket(.xpub, connect: nil, context: context)
        try publisher.socket.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(publisher.socket.lastEndpoint)
        let connect: (inout HandlerConfiguration) -> Void = {
            $0.pushInSubSpecs = [endpoint]
            $0.pushInSubConnect = true
        }
        try await withZeroMQ(connect) { harness in
            #expect(harness.endpoints.sub.isEmpty)
            let (session, connection) = await harness.hold(["far"])
            defer { session.end() }
            #expect(try await publisher.receive() == [[1] + Array("far".utf8)])
            try await publisher.send([Array("far".utf8), streamItem(channel: nil, content: "far away\n").encoded()])
            #expect(try await connection.streamed(until: "far away\n") == "far away\n")
        }
    }
}
