import GRIP
import Publish
import Store
import Testing

@Suite("ZeroMQ PULL publish input", .timeLimit(.minutes(1)))
struct ZMQPullTests {
    @Test("JSON, tnetstring and T-prefixed tnetstring items are committed")
    func everyEncoding() async throws {
        try await withZeroMQ { harness in
            let push = try TestSocket(.push, connect: harness.endpoints.pull, context: harness.context)
            try await push.send(#"J{"channel": "c", "formats": {"http-stream": {"content": "json\n"}}}"#)
            try await push.send([streamItem(channel: "c", content: "tnet\n").encoded()])
            try await push.send([Array("T".utf8) + streamItem(channel: "c", content: "T\n").encoded()])
            let items = try await harness.waitForStored("c", count: 3)
            #expect(items.map(storedContent) == ["json\n", "tnet\n", "T\n"])
        }
    }

    @Test("a publisher's items are committed in the order sent")
    func order() async throws {
        try await withZeroMQ { harness in
            let push = try TestSocket(.push, connect: harness.endpoints.pull, context: harness.context)
            for index in 0..<500 {
                try await push.send([streamItem(channel: "order", content: "\(index)").encoded()])
            }
            let items = try await harness.waitForStored("order", count: 500)
            #expect(items.map(storedContent) == (0..<500).map { "\($0)" })
            #expect(items.map(\.sequence) == (1...500).map { Int64($0) })
        }
    }

    @Test("malformed messages are counted and skipped; the input keeps working")
    func malformed() async throws {
        try await withZeroMQ { harness in
            let push = try TestSocket(.push, connect: harness.endpoints.pull, context: harness.context)
            try await push.send("Jnot json at all")
            try await push.send("garbage that is no tnetstring")
            try await push.send([[]])
            try await push.send([streamItem(channel: "m", content: "two frames").encoded(), [1]])
            try await push.send([TNetString.dict([TNetString.Member("channel", .string("m"))]).encoded()])
            try await push.send(#"J{"formats": {"http-stream": {"content": "no channel"}}}"#)
            try await push.send([streamItem(channel: "m", content: "still alive\n").encoded()])
            let items = try await harness.waitForStored("m", count: 1)
            #expect(items.map(storedContent) == ["still alive\n"])
            #expect(harness.malformedFrames == 6)
        }
    }

    @Test("an item re-sent with the same id is stored and delivered once")
    func duplicates() async throws {
        try await withZeroMQ { harness in
            let (session, connection) = await harness.hold(["d"])
            defer { session.end() }
            let push = try TestSocket(.push, connect: harness.endpoints.pull, context: harness.context)
            for _ in 0..<2 {
                try await push.send([streamItem(channel: "d", content: "once\n", id: "1").encoded()])
            }
            try await push.send([streamItem(channel: "d", content: "after\n", id: "2").encoded()])
            #expect(try await connection.streamed(until: "after\n") == "once\nafter\n")
            #expect(try await harness.stored("d").map(\.id) == ["1", "2"])
            #expect(harness.duplicates == 1)
        }
    }

    @Test("items reach held subscribers after they are committed")
    func delivery() async throws {
        try await withZeroMQ { harness in
            let (session, connection) = await harness.hold(["live"])
            defer { session.end() }
            let push = try TestSocket(.push, connect: harness.endpoints.pull, context: harness.context)
            try await push.send([streamItem(channel: "live", content: "hello\n").encoded()])
            #expect(try await connection.streamed(until: "hello\n") == "hello\n")
            #expect(try await harness.stored("live").count == 1)
        }
    }
}
