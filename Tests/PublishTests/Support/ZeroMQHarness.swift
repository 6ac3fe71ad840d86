import Foundation
import GRIP
import Logging
import P8TestSupport
import Publish
import ServiceLifecycle
import Store
import Synchronization

/// What a test gets from ``withZeroMQ(_:_:)``: the hub and where its sockets are.
struct ZeroMQHarness {
    let hub: PublishHub
    let endpoints: ZMQEndpoints
    /// The clients' context.
    let context: ZMQContext

    /// ``PublishCounters/malformedFrames`` now.
    var malformedFrames: Int {
        self.hub.counters.malformedFrames.load(ordering: .relaxed)
    }

    /// ``PublishCounters/duplicates`` now.
    var duplicates: Int {
        self.hub.counters.duplicates.load(ordering: .relaxed)
    }

    /// The items stored on `channel`, oldest first.
    func stored(_ channel: String) async throws -> [StoredItem] {
        try await self.hub.store.read(channel: channel, after: .sequence(0), limit: 1000).items ?? []
    }

    /// Waits until `channel` holds at least `count` items and returns them.
    func waitForStored(_ channel: String, count: Int) async throws -> [StoredItem] {
        _ = try await eventually { try await self.stored(channel).count >= count }
        return try await self.stored(channel)
    }

    /// Starts a hold on `channels`; the returned connection records what it is sent.
    func hold(_ channels: [String], mode: Instruct.HoldMode = .stream) async -> (HoldSession, RecordingConnection) {
        let connection = RecordingConnection()
        let request = HoldRequest(
            mode: mode,
            channels: channels.map { HoldRequest.Channel(name: $0, backendName: $0) },
            response: Instruct.Response(code: 200, reason: "OK", headers: [], body: [])
        )
        let decision = await withCheckedContinuation { continuation in
            self.hub.startHold(request, connection: connection) { continuation.resume(returning: $0) }
        }
        guard case .hold(let session, _) = decision else {
            preconditionFailure("a hold without positions is always held")
        }
        session.activate()
        return (session, connection)
    }
}

/// Runs a store, a hub and the ZeroMQ sockets of `[handler]` as `p8` does (every socket on a wildcard port or
/// an ipc path in a fresh directory, stats reports every second), runs `body`, then shuts down gracefully.
func withZeroMQ(
    _ configure: (inout HandlerConfiguration) -> Void = { _ in },
    _ body: (ZeroMQHarness) async throws -> Void
) async throws {
    let temporary = try TemporaryDirectory(prefix: "p8-zmq")
    let directory = temporary.url
    let logger = Logger(label: "p8-test", factory: { _ in SwiftLogNoOpLogHandler() })
    let store = try await ChannelStore.open(
        configuration: StoreConfiguration(databaseFile: directory.appendingPathComponent("p8.sqlite").path),
        logger: logger
    )
    var configuration = HandlerConfiguration(
        pushInSpec: "tcp://127.0.0.1:*",
        pushInSubSpecs: ["tcp://127.0.0.1:*"],
        statsSpec: "ipc://\(directory.path)/run/stats",
        commandSpec: "tcp://127.0.0.1:*",
        statsReportInterval: 1
    )
    configure(&configuration)
    let hub = PublishHub(store: store, configuration: configuration, instance: "test", logger: logger)
    let zeroMQ = try ZeroMQServices.bind(configuration: configuration, hub: hub, logger: logger)
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: [.init(service: hub)] + zeroMQ.services.map { .init(service: $0) },
            logger: logger
        )
    )
    let harness = ZeroMQHarness(hub: hub, endpoints: zeroMQ.endpoints, context: try ZMQContext())
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            try await body(harness)
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

/// A test's client socket. Sends and receives without blocking the test's thread: it retries while libzmq
/// cannot send yet (not connected) and polls for replies.
final class TestSocket {
    let socket: ZMQSocket

    init(_ kind: ZMQSocket.Kind, connect spec: String?, context: ZMQContext) throws {
        self.socket = try ZMQSocket(kind, context: context)
        if let spec {
            try self.socket.connect(spec)
        }
    }

    deinit {
        self.socket.close()
    }

    func send(_ frames: [[UInt8]], timeout: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                return try self.socket.send(frames, wait: false)
            } catch let error as ZMQError where error.code == EAGAIN && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    func send(_ text: String) async throws {
        try await self.send([Array(text.utf8)])
    }

    /// The next message, or nil after `timeout`.
    func receive(timeout: Duration = .seconds(15)) async throws -> [[UInt8]]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frames = try self.socket.receive(wait: false) {
                return frames
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}

/// A tnetstring item with `http-stream` content.
func streamItem(channel: String?, content: String, id: String? = nil) -> TNetString {
    var members: [TNetString.Member] = []
    if let channel {
        members.append(TNetString.Member("channel", .string(channel)))
    }
    if let id {
        members.append(TNetString.Member("id", .string(id)))
    }
    members.append(
        TNetString.Member(
            "formats",
            .dict([TNetString.Member("http-stream", .dict([TNetString.Member("content", .string(content))]))])
        )
    )
    return .dict(members)
}

/// The `http-stream` content of a stored item.
func storedContent(_ item: StoredItem) -> String? {
    guard case .object(let formats)? = JSONValue.parse(Array(item.formats)),
        case .object(let stream)? = formats["http-stream"]
    else {
        return nil
    }
    return stream["content"]?.stringValue
}

extension RecordingConnection {
    /// Waits until the stream contents end with `suffix` and returns them.
    func streamed(until suffix: String) async throws -> String {
        _ = try await self.waitFor { _ in self.streamed.hasSuffix(suffix) }
        return self.streamed
    }
}
