import Foundation
import GRIP
import Logging
import NIOCore
import NIOWebSocket
import Publish

/// What the GRIP layer of a client WebSocket asks of the mode that owns it (``WebSocketOverHTTP``,
/// ``WebSocketPassthrough``).
protocol WebSocketGripOwner: AnyObject {
    /// A `detach` control message: stop talking to the backend, keep the client.
    func gripDetach()
    /// A `close` control message or a published `close` action: close the client with this code and reason, and
    /// tell the backend.
    func gripClose(code: UInt16?, reason: String)
    /// `refresh`: a WebSocket-over-HTTP connection makes a backend request now.
    func gripRefresh()
}

/// The GRIP side of one client WebSocket (grip-spec §7.4-7.5), the same in both modes: messages from the backend
/// are control messages (`c:`) or carry the message prefix, which is stripped; published `ws-message` items reach
/// the client through a ``WebSocketSession``; keep-alives and delayed messages run on timers.
///
/// Without the GRIP extension (`prefix` nil) messages from the backend are relayed as they are and the client is
/// not subscribable. Lives on the client connection's event loop.
final class WebSocketGrip {
    /// Largest frame sent to the client: longer messages are split (grip-spec §7.3).
    static let maxFrameToClient = 16 * 1024

    /// The client's connection, once upgraded.
    var client: WebSocketFrameHandler?
    weak var owner: (any WebSocketGripOwner)?
    private let prefix: [UInt8]?
    private let route: Route
    private let eventLoop: any EventLoop
    private let logger: Logger
    private var session: WebSocketSession?
    /// The `keep-alive` control message's timer, and what it sends.
    private var keepAlive:
        (message: WebSocketControlMessage.Message, timeout: Int, mode: WebSocketControlMessage.KeepAliveMode)?
    private var keepAliveTimer: Scheduled<Void>?
    private var delayed: (message: WebSocketControlMessage.Message, timer: Scheduled<Void>)?

    /// - Parameters:
    ///   - extensions: the backend's `Sec-WebSocket-Extensions` values; GRIP is on when they name `grip` and
    ///     the route allows it.
    /// - Parameters:
    ///   - connectionID: the id the publish side knows the connection by (`conncheck`, `refresh`): the
    ///     `Connection-Id` of WebSocket-over-HTTP, as in Pushpin; a new one when nil.
    ///   - startedAt: when the connection opened, for a connection taken over from an earlier server.
    init(
        connectionID: String? = nil,
        startedAt: Date? = nil,
        extensions: [String],
        enabled: Bool,
        route: Route,
        engine: ProxyEngine,
        clientAddress: String?,
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        let prefix = enabled ? WebSocketHandshake.gripMessagePrefix(extensions: extensions) : nil
        self.prefix = prefix.map { Array($0.utf8) }
        self.route = route
        self.eventLoop = eventLoop
        self.logger = logger
        if prefix != nil {
            self.session = engine.hub.openWebSocket(
                id: connectionID,
                startedAt: startedAt,
                connection: HeldWebSocket(grip: self, eventLoop: eventLoop),
                routeID: route.hasExplicitID ? route.id : nil,
                clientAddress: clientAddress
            )
        }
    }

    /// The channels the client is subscribed to, with the id each was subscribed from.
    /// When the connection opened, as its held-request record says (nil without GRIP).
    var startedAt: Date? {
        self.session?.startedAt
    }

    var subscriptions: [WebSocketOverHTTPSession.Subscription] {
        self.session?.channels.map { .init(channel: $0.name, lastID: $0.lastID) } ?? []
    }

    /// Whether the backend enabled the GRIP extension.
    var isEnabled: Bool { self.prefix != nil }

    // MARK: - From the backend

    /// A whole message from the backend.
    func backendMessage(_ content: [UInt8], opcode: WebSocketOpcode) {
        guard let prefix = self.prefix else {
            self.sendToClient(opcode, content[...])
            return
        }
        if opcode == .text && content.starts(with: WebSocketControlMessage.prefix) {
            do {
                self.control(try WebSocketControlMessage(json: Array(content.dropFirst(2))))
            } catch {
                self.logger.debug("invalid control message from backend", metadata: ["error": "\(error)"])
            }
            return
        }
        guard content.starts(with: prefix) else {
            self.logger.debug("message from backend without the GRIP message prefix dropped")
            return
        }
        self.sendToClient(opcode, content.dropFirst(prefix.count))
    }

    private func control(_ message: WebSocketControlMessage) {
        switch message {
        case .subscribe(let channel, let filters, let lastID):
            self.session?.subscribe(
                channel: self.route.prefix + channel,
                backendName: channel,
                filters: filters,
                lastID: lastID
            )
        case .unsubscribe(let channel):
            self.session?.unsubscribe(channel: self.route.prefix + channel)
        case .detach:
            self.owner?.gripDetach()
        case .session:
            // Sessions (grip-spec §7.4) are not supported yet.
            break
        case .setMeta(let name, let value):
            self.session?.setMeta(name: name, value: value)
        case .keepAlive(let message, let timeout, let mode):
            self.keepAlive = message.map { ($0, max(1, timeout), mode) }
            self.armKeepAlive()
        case .sendDelayed(let message, let timeout):
            self.flushDelayed()
            let timer = self.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(max(0, timeout)))) {
                self.flushDelayed()
            }
            self.delayed = (message, timer)
        case .flushDelayed:
            self.flushDelayed()
        case .close(let code, let reason):
            self.owner?.gripClose(code: code, reason: reason)
        case .unknown(let type):
            self.logger.debug("unknown control message type ignored", metadata: ["type": "\(type)"])
        }
    }

    private func flushDelayed() {
        guard let delayed = self.delayed else { return }
        self.delayed = nil
        delayed.timer.cancel()
        self.send(delayed.message, isKeepAlive: false)
    }

    private func armKeepAlive() {
        self.keepAliveTimer?.cancel()
        guard let keepAlive = self.keepAlive else { return }
        self.keepAliveTimer = self.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(keepAlive.timeout))) {
            self.send(keepAlive.message, isKeepAlive: true)
            self.armKeepAlive()
        }
    }

    private func send(_ message: WebSocketControlMessage.Message, isKeepAlive: Bool) {
        self.sendToClient(Self.opcode(message.type), message.content[...], isKeepAlive: isKeepAlive)
    }

    private static func opcode(_ type: WSMessageFormat.MessageType) -> WebSocketOpcode {
        switch type {
        case .text: .text
        case .binary: .binary
        case .ping: .ping
        case .pong: .pong
        }
    }

    /// Sends a message to the client, split into frames of at most ``maxFrameToClient`` bytes.
    func sendToClient(_ opcode: WebSocketOpcode, _ content: ArraySlice<UInt8>, isKeepAlive: Bool = false) {
        guard let client = self.client else { return }
        if !isKeepAlive, self.keepAlive?.mode == .idle {
            self.armKeepAlive()
        }
        guard opcode == .text || opcode == .binary, content.count > Self.maxFrameToClient else {
            client.send(opcode, SharedContent.buffer(content))
            return
        }
        var start = content.startIndex
        var frameOpcode = opcode
        while start < content.endIndex {
            let end = min(start + Self.maxFrameToClient, content.endIndex)
            client.sendFrame(frameOpcode, SharedContent.buffer(content[start..<end]), fin: end == content.endIndex)
            frameOpcode = .continuation
            start = end
        }
    }

    // MARK: - Publishing

    /// A published `ws-message` for the client.
    func publishedMessage(type: WSMessageFormat.MessageType, content: [UInt8]) {
        self.sendToClient(Self.opcode(type), content[...])
    }

    /// A published `close` action.
    func publishedClose(code: UInt16?, reason: String) {
        self.owner?.gripClose(code: code, reason: reason)
    }

    /// P-8's resume extension: the client's position on `channel` was lost (documented in the README).
    func sendReset(channel: String) {
        let json = JSONValue.object(["type": .string("reset"), "channel": .string(channel)]).encoded()
        self.sendToClient(.text, (WebSocketControlMessage.prefix + json)[...])
    }

    // MARK: - Hand-over

    /// What a server that takes the client over needs of the GRIP side.
    struct Handover: Codable, Sendable {
        var subscriptions: [WebSocketSubscriptionPosition]
        var meta: [String: String]
        var keepAlive: KeepAlive?

        /// The `keep-alive` control message in force.
        struct KeepAlive: Codable, Sendable {
            var message: WebSocketControlMessage.Message
            var timeout: Int
            var mode: WebSocketControlMessage.KeepAliveMode
        }
    }

    /// Ends the GRIP side for a server that takes the client over (the backend hears nothing); nil while it
    /// cannot be (a delayed message waits, a subscription is resuming).
    func handOver() -> Handover? {
        guard self.delayed == nil else { return nil }
        var handover = Handover(subscriptions: [], meta: [:])
        if let session = self.session {
            guard let (subscriptions, meta) = session.handOver() else { return nil }
            handover.subscriptions = subscriptions
            handover.meta = meta
        }
        handover.keepAlive = self.keepAlive.map { .init(message: $0.message, timeout: $0.timeout, mode: $0.mode) }
        self.session = nil
        self.keepAliveTimer?.cancel()
        self.keepAlive = nil
        return handover
    }

    /// Continues what an earlier server handed over: the subscriptions from their positions, the meta, the
    /// keep-alive.
    func takeOver(_ handover: Handover) {
        for (name, value) in handover.meta {
            self.session?.setMeta(name: name, value: value)
        }
        for subscription in handover.subscriptions {
            self.session?.subscribe(
                channel: subscription.channel,
                backendName: subscription.backendName,
                filters: subscription.filters,
                lastID: subscription.lastID,
                resumeSequence: subscription.sequence
            )
        }
        if let keepAlive = handover.keepAlive {
            self.keepAlive = (keepAlive.message, keepAlive.timeout, keepAlive.mode)
            self.armKeepAlive()
        }
    }

    // MARK: - End

    /// The client is closing or gone: unsubscribe and stop the timers. Safe to call more than once.
    func end() {
        self.session?.end()
        self.session = nil
        self.keepAliveTimer?.cancel()
        self.keepAlive = nil
        self.delayed?.timer.cancel()
        self.delayed = nil
    }
}

@available(*, unavailable)
extension WebSocketGrip: Sendable {}
