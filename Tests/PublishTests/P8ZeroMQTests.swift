import Foundation
import GRIP
import Logging
import P8TestSupport
import Publish
import Runner
import Store
import Testing

@Suite("p8 with its ZeroMQ sockets", .timeLimit(.minutes(1)))
struct P8ZeroMQTests {
    static let logger = Logger(label: "p8-test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test("p8 binds the [handler] sockets and commits what its PULL socket receives")
    func server() async throws {
        let temporary = try TemporaryDirectory(prefix: "p8-zmq")
        let directory = temporary.url
        let configuration = try P8Configuration.parse(
            text: """
                [global]
                rundir=run
                [runner]
                http_port=127.0.0.1:0
                [handler]
                push_in_spec=tcp://127.0.0.1:*
                push_in_sub_specs=tcp://127.0.0.1:*
                command_spec=ipc://{rundir}/command
                """,
            configDirectory: directory.path,
            readFile: { _ in nil }
        )
        let server = P8Server(
            configuration: configuration,
            overrides: P8Server.Overrides(routeLines: ["* 127.0.0.1:1"]),
            logger: Self.logger
        )
        let (readiness, continuation) = AsyncStream<P8Server.Readiness>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Ends the readiness stream if p8 stops before it is ready, so the test sees why instead of waiting.
                defer { continuation.finish() }
                try await server.run { continuation.yield($0) }
            }
            var iterator = readiness.makeAsyncIterator()
            guard let ready = await iterator.next() else {
                try await group.waitForAll()
                Issue.record("p8 stopped before it was ready, without an error")
                return
            }
            #expect(ready.zeroMQ.command == "ipc://\(directory.path)/run/command")
            #expect(ready.zeroMQ.stats == "ipc://\(directory.path)/run/pushpin-stats")
            #expect(ready.zeroMQ.sub.count == 1)

            let context = try ZMQContext()
            let push = try TestSocket(.push, connect: ready.zeroMQ.pull, context: context)
            try await push.send([streamItem(channel: "p8", content: "through p8\n").encoded()])
            let store = try await ChannelStore.openReadOnly(path: configuration.store.databaseFile, logger: Self.logger)
            let stored = { try await store.read(channel: "p8", after: .sequence(0)).items ?? [] }
            _ = try await eventually { try await !stored().isEmpty }
            #expect(try await stored().map(storedContent) == ["through p8\n"])
            group.cancelAll()
        }
    }

    @Test("a spec that cannot be bound stops start-up with the spec in the error")
    func bindFailure() async throws {
        let context = try ZMQContext()
        let taken = try ZMQSocket(.pull, context: context)
        try taken.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(taken.lastEndpoint)
        try await withZeroMQ { harness in
            let configuration = HandlerConfiguration(
                pushInSpec: endpoint,
                pushInSubSpecs: [],
                statsSpec: "",
                commandSpec: ""
            )
            #expect {
                _ = try ZeroMQServices.bind(configuration: configuration, hub: harness.hub, logger: Self.logger)
            } throws: { error in
                "\(error)" == "bind \(endpoint): Address already in use"
            }
        }
    }
}
