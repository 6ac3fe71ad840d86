import Foundation
import GRIP
import Logging
import P8TestSupport
import Publish
import Store
import Synchronization

/// What a held connection was asked to do, in order.
enum HeldEvent: Equatable, Sendable {
    case response(code: Int, headers: [HeaderField], body: String)
    case content(String)
    case end
    case recover([GripLast])
    case failed(String)
}

/// The held-connection side of the seam as a recorder: the hub's output, observed.
final class RecordingConnection: HeldConnection {
    private let events = Mutex<[HeldEvent]>([])

    var recorded: [HeldEvent] { self.events.withLock { $0 } }

    func sendResponse(_ response: Instruct.Response) {
        self.events.withLock {
            $0.append(
                .response(
                    code: response.code,
                    headers: response.headers,
                    body: String(decoding: response.body, as: UTF8.self)
                )
            )
        }
    }

    func sendStreamContent(_ content: [UInt8]) {
        self.events.withLock { $0.append(.content(String(decoding: content, as: UTF8.self))) }
    }

    func endStream() {
        self.events.withLock { $0.append(.end) }
    }

    func recover(gripLast: [GripLast]) {
        self.events.withLock { $0.append(.recover(gripLast)) }
    }

    func filterFailed(_ message: String) {
        self.events.withLock { $0.append(.failed(message)) }
    }

    /// Waits (bounded) until `predicate` holds for the recorded events.
    func waitFor(_ predicate: ([HeldEvent]) -> Bool) async throws -> [HeldEvent] {
        _ = try await eventually { predicate(self.recorded) }
        return self.recorded
    }

    /// The stream contents recorded so far, concatenated.
    var streamed: String {
        self.recorded.compactMap { event -> String? in
            if case .content(let text) = event { return text }
            return nil
        }.joined()
    }
}

/// A hub over a fresh database in a temporary directory, with its sequencer running.
func withHub(
    messageWait: Int = 300,
    fanOutPacer: (any FanOutPacer)? = nil,
    _ body: (PublishHub) async throws -> Void
) async throws {
    let temporary = try TemporaryDirectory(prefix: "p8-publish")
    let directory = temporary.url
    let logger = Logger(label: "p8.publish.tests", factory: { _ in SwiftLogNoOpLogHandler() })
    let store = try await ChannelStore.open(
        configuration: StoreConfiguration(
            databaseFile: directory.appendingPathComponent("p8.sqlite").path,
            reorderingWaitMilliseconds: messageWait
        ),
        logger: logger
    )
    let hub = PublishHub(
        store: store,
        configuration: HandlerConfiguration(statsSpec: "", messageWait: messageWait),
        instance: "test",
        logger: logger,
        fanOutPacer: fanOutPacer
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await hub.run() }
        defer { group.cancelAll() }
        try await body(hub)
    }
}

/// An item with an `http-stream` and an `http-response` format carrying `text`.
func textItem(_ channel: String, _ text: String, id: String? = nil, prevID: String? = nil) -> PublishItem {
    PublishItem(
        channel: channel,
        id: id,
        prevID: prevID,
        formats: PublishFormats(
            httpResponse: HTTPResponseFormat(body: .bytes(Array(text.utf8))),
            httpStream: HTTPStreamFormat(content: Array(text.utf8))
        )
    )
}

func holdRequest(
    _ mode: Instruct.HoldMode,
    channels: [(String, String?)],
    nextLink: Bool = false,
    isRecovery: Bool = false,
    eventStream: Bool = false
) -> HoldRequest {
    HoldRequest(
        mode: mode,
        channels: channels.map { HoldRequest.Channel(name: $0.0, backendName: $0.0, prevID: $0.1) },
        response: Instruct.Response(
            code: 200,
            reason: "OK",
            headers: [HeaderField(name: "X-Original", value: "yes")],
            body: Array("timeout\n".utf8)
        ),
        hasNextLink: nextLink,
        isEventStream: eventStream,
        isRecovery: isRecovery
    )
}

/// Starts a hold and waits for the hub's decision.
func startHold(_ hub: PublishHub, _ request: HoldRequest, _ connection: RecordingConnection) async -> HoldDecision {
    await withCheckedContinuation { continuation in
        hub.startHold(request, connection: connection) { decision in
            continuation.resume(returning: decision)
        }
    }
}

/// Starts a hold that the test expects to be held, and activates it.
func hold(_ hub: PublishHub, _ request: HoldRequest, _ connection: RecordingConnection) async throws -> HoldSession {
    guard case .hold(let session, _) = await startHold(hub, request, connection) else {
        throw HubTestError("expected a hold")
    }
    session.activate()
    return session
}

struct HubTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Waits until every item committed so far has been handed to its subscribers.
///
/// The hub fans out one commit after the other from one queue: once a marker published now has reached its own
/// subscriber, everything committed before it has reached theirs. A test that asserts that something was not
/// delivered calls this first, so that the check cannot pass merely because the delivery was late.
func allDelivered(_ hub: PublishHub) async throws {
    let marker = "barrier-\(UUID().uuidString)"
    let connection = RecordingConnection()
    let session = try await hold(hub, holdRequest(.stream, channels: [(marker, nil)]), connection)
    defer { session.end() }
    try await hub.publish([textItem(marker, "marker")])
    guard try await eventually({ connection.streamed == "marker" }) else {
        throw HubTestError("the barrier's marker was not delivered")
    }
}
