package import GRIP
package import Logging
import ServiceLifecycle
import Synchronization

/// The command socket (`command_spec`, grip-spec §4.4): Pushpin's zrpc requests, one tnetstring frame
/// `{"id", "method", "args"}` each, answered `{"id", "success": true, "value"}` or
/// `{"id", "success": false, "condition"[, "value"]}`.
///
/// A ROUTER socket, as Pushpin's, so REQ clients and pipelining DEALER clients both work. Requests are
/// answered in arrival order; `publish` answers once its items are committed.
package final class ZMQCommandServer: Service, Sendable {
    private struct Request {
        /// The routing frames (through the empty delimiter, if any) to send the reply back with.
        var envelope: [[UInt8]]
        var body: [UInt8]
    }

    private let hub: PublishHub
    private let loop: ZMQSocketLoop
    private let requests: IntakeQueue<Request>
    private let endpoints: ZMQEndpoints
    private let logger: Logger

    /// Creates the server for a bound ROUTER socket.
    ///
    /// - Parameter endpoints: what `get-zmq-uris` reports.
    /// - Throws: the system's error when the socket's thread cannot be set up.
    package init(socket: ZMQSocket, hub: PublishHub, endpoints: ZMQEndpoints, logger: Logger) throws {
        let requests = IntakeQueue<Request>()
        self.hub = hub
        self.requests = requests
        self.endpoints = endpoints
        self.logger = logger
        self.loop = try ZMQSocketLoop(socket: socket, name: "p8-zmq-command") { frames in
            // [identity..., "", body] from REQ; a DEALER may leave out the delimiter.
            let delimiter = frames.firstIndex(where: \.isEmpty)
            let split = delimiter.map { $0 + 1 } ?? frames.count - 1
            guard split >= 1, split == frames.count - 1 else {
                hub.counters.malformedFrames.add(1, ordering: .relaxed)
                logger.info("command message without exactly one body frame dropped")
                return
            }
            requests.append(Request(envelope: Array(frames[..<split]), body: frames[split]))
        }
    }

    /// Answers requests until graceful shutdown.
    package func run() async throws {
        self.loop.start()
        await withGracefulShutdownHandler {
            while true {
                let batch = await self.requests.next(limit: 1)
                guard let request = batch.first else { break }
                let reply = await self.reply(to: request.body).encoded()
                self.loop.perform { [logger] socket in
                    do {
                        try socket.send(request.envelope + [reply], wait: false)
                    } catch {
                        logger.debug("command reply not sent", metadata: ["error": "\(error)"])
                    }
                }
            }
        } onGracefulShutdown: {
            self.requests.finish()
        }
        await self.loop.stop()
    }

    /// The reply to one request frame.
    package func reply(to body: [UInt8]) async -> TNetString {
        guard let request = try? TNetString.decode(body), case .dict = request,
            case .bytes(let methodBytes)? = request["method"],
            let method = String(validating: methodBytes, as: UTF8.self)
        else {
            self.hub.counters.malformedFrames.add(1, ordering: .relaxed)
            self.logger.info("malformed command request")
            return Self.failure(id: nil, condition: "bad-request")
        }
        var id: [UInt8]?
        if case .bytes(let bytes)? = request["id"] {
            id = bytes
        }
        let args = request["args"] ?? .dict([])
        guard case .dict = args else {
            return Self.failure(id: id, condition: "bad-request")
        }
        switch method {
        case "publish":
            return await self.publish(args, id: id)
        case "recover":
            await self.hub.recover()
            return Self.success(id: id, value: .null)
        case "conncheck":
            guard case .list(let list)? = args["ids"] else {
                return Self.failure(id: id, condition: "bad-request")
            }
            var ids: [String] = []
            for element in list {
                guard case .bytes(let bytes) = element, let text = String(validating: bytes, as: UTF8.self) else {
                    return Self.failure(id: id, condition: "bad-request")
                }
                ids.append(text)
            }
            return Self.success(id: id, value: .list(self.hub.connectedSessions(among: ids).map(TNetString.string)))
        case "refresh":
            // WebSocket-over-HTTP connections make a backend request now: one by its Connection-Id, or all those
            // subscribed to a channel.
            if case .bytes(let bytes)? = args["cid"], let cid = String(validating: bytes, as: UTF8.self) {
                return self.hub.refreshWebSocket(id: cid)
                    ? Self.success(id: id, value: .null) : Self.failure(id: id, condition: "item-not-found")
            }
            if case .bytes(let bytes)? = args["channel"], let channel = String(validating: bytes, as: UTF8.self) {
                self.hub.refreshWebSockets(channel: channel)
                return Self.success(id: id, value: .null)
            }
            return Self.failure(id: id, condition: "bad-request")
        case "get-zmq-uris":
            let endpoints = self.endpoints
            var members: [TNetString.Member] = []
            if let command = endpoints.command {
                members.append(TNetString.Member("command", .string(command)))
            }
            if let pull = endpoints.pull {
                members.append(TNetString.Member("publish-pull", .string(pull)))
            }
            if let sub = endpoints.sub.first {
                members.append(TNetString.Member("publish-sub", .string(sub)))
            }
            return Self.success(id: id, value: .dict(members))
        default:
            return Self.failure(id: id, condition: "method-not-found")
        }
    }

    private func publish(_ args: TNetString, id: [UInt8]?) async -> TNetString {
        guard case .list(let list)? = args["items"] else {
            return Self.failure(
                id: id,
                condition: "bad-request",
                value: .string(PublishError(.missingItems, "object does not contain 'items'").description)
            )
        }
        var items: [PublishItem] = []
        for (index, element) in list.enumerated() {
            do throws(PublishError) {
                items.append(try PublishItem.parse(element))
            } catch {
                var error = error
                error.itemIndex = index
                return Self.failure(id: id, condition: "bad-request", value: .string(error.description))
            }
        }
        do {
            try await self.hub.publish(items)
        } catch {
            self.logger.warning("publish command not committed", metadata: ["error": "\(error)"])
            return Self.failure(id: id, condition: "internal-server-error")
        }
        return Self.success(id: id, value: .null)
    }

    private static func success(id: [UInt8]?, value: TNetString) -> TNetString {
        var members: [TNetString.Member] = []
        if let id {
            members.append(TNetString.Member(key: Array("id".utf8), value: .bytes(id)))
        }
        members.append(TNetString.Member("success", .bool(true)))
        members.append(TNetString.Member("value", value))
        return .dict(members)
    }

    private static func failure(id: [UInt8]?, condition: String, value: TNetString? = nil) -> TNetString {
        var members: [TNetString.Member] = []
        if let id {
            members.append(TNetString.Member(key: Array("id".utf8), value: .bytes(id)))
        }
        members.append(TNetString.Member("success", .bool(false)))
        members.append(TNetString.Member("condition", .string(condition)))
        if let value {
            members.append(TNetString.Member("value", value))
        }
        return .dict(members)
    }
}
