import Foundation
import GRIP
import NIOCore
import Publish

/// A WebSocket-over-HTTP connection as the server that takes it over needs it, besides its socket: the upgrade
/// request and route, the connection's id and meta (the backend sees the same connection), the keep-alive
/// interval, and the GRIP side (subscriptions with positions, meta, keep-alive).
struct WebSocketHandoverRecord: Codable, Sendable {
    var request: RequestHeadRecord
    var routeID: String?
    var connectionID: String
    var oneEventPerRequest: Bool
    var meta: [String: String]
    var keepAliveInterval: Int?
    var extensions: [String]
    var grip: WebSocketGrip.Handover?
    /// Events the client sent that had not reached the backend (their request was still waiting for a backend
    /// connection), in the WebSocket-events encoding: the new server sends them first.
    var pending: [UInt8]?
    /// When the client's connection opened (its held-request record keeps it; nil from a server before this).
    var startedAt: Date?
}

/// The restart without dropped connections, for WebSocket-over-HTTP: the old server hands an open connection over
/// between backend requests; the new one continues it without a new `OPEN` (the backend sees one connection).
extension WebSocketOverHTTP {
    /// Whether the connection can be handed over now: open, attached, no backend request in flight or queued,
    /// no close under way, no message half received.
    var isHandoverReady: Bool {
        self.isHandoverReadyButForRequests && self.machine.session.inFlight == nil
            && self.machine.session.queued.isEmpty
    }

    /// Whether the connection could be handed over but for its backend request, which has not reached the
    /// backend yet (it waits for a connection, or for a retry after a failed connect).
    private var isHandoverReadyButForUnsentRequest: Bool {
        self.isHandoverReadyButForRequests && self.hasUnsentRequest
    }

    /// Open, attached, no close under way, no message half received: ready but for its backend requests.
    private var isHandoverReadyButForRequests: Bool {
        let session = self.machine.session
        return session.phase == .open && session.clientAttached && session.clientClose == nil
            && (self.frames?.isHandoverReady ?? false)
    }

    /// Ends this side of the connection for a server that takes it over (the backend hears nothing), and gives
    /// its record; busy while a backend request or a message is under way, and for good once it is closing.
    /// With `replaying` (the settling time is over), a request that has not reached the backend goes over with
    /// its events, for the new server to send.
    func handOver(replaying: Bool) -> HandoverOutcome {
        let notNow: HandoverOutcome = self.machine.session.phase == .open ? .busy : .stays
        let unsent = !self.isHandoverReady && replaying && self.isHandoverReadyButForUnsentRequest
        guard self.isHandoverReady || unsent else { return notNow }
        var grip: WebSocketGrip.Handover?
        let startedAt = self.grip?.startedAt
        if let current = self.grip {
            guard let handedOver = current.handOver() else { return notNow }
            grip = handedOver
        }
        // Abandoned last, once nothing here can keep the connection (the hand-over closes it if it cannot go).
        let pending = unsent ? self.abandonUnsentRequestForHandover().map(WebSocketEvent.encode) : nil
        self.grip = nil
        self.keepAlivePoll?.cancel()
        let session = self.machine.session
        let route = self.handshake.route
        let record = WebSocketHandoverRecord(
            request: RequestHeadRecord(self.handshake.requestHead),
            routeID: route.hasExplicitID ? route.id : nil,
            connectionID: session.connectionID,
            oneEventPerRequest: session.oneEventPerRequest,
            meta: session.meta,
            keepAliveInterval: session.keepAliveInterval,
            extensions: self.extensions,
            grip: grip,
            pending: pending,
            startedAt: startedAt
        )
        return .handedOver(HandedOverConnection(webSocket: record))
    }

    /// Continues a connection an earlier server handed over, on `client` (the connection's HTTP handler, which
    /// gives way to the WebSocket frame codec at once: the client has its `101`).
    static func takeOver(
        _ record: WebSocketHandoverRecord,
        client: ClientConnectionHandler,
        route: Route,
        originForm: String
    ) -> WebSocketOverHTTP {
        let handshake = WebSocketClientHandshake(
            client: client,
            engine: client.engine,
            pool: client.pool,
            requestHead: record.request.head,
            route: route,
            originForm: originForm,
            logger: client.logger
        )
        var session = WebSocketOverHTTPSession(
            connectionID: record.connectionID,
            oneEventPerRequest: record.oneEventPerRequest
        )
        session.phase = .open
        session.clientAttached = true
        session.meta = record.meta
        session.keepAliveInterval = record.keepAliveInterval
        let webSocket = WebSocketOverHTTP(handshake: handshake, session: session)
        let frames = handshake.frameHandler(role: .server, answersPings: true)
        frames.delegate = webSocket
        webSocket.frames = frames
        webSocket.extensions = record.extensions
        client.upgradeToWebSocket(nil, frames: frames, maxFrameBytes: handshake.maxFrameBytes)
        webSocket.grip = handshake.grip(
            connectionID: record.connectionID,
            startedAt: record.startedAt,
            extensions: record.extensions,
            frames: frames,
            owner: webSocket
        )
        if let grip = record.grip {
            webSocket.grip?.takeOver(grip)
        }
        if let interval = record.keepAliveInterval {
            webSocket.run([.armKeepAlive(seconds: interval)])
        }
        if let pending = record.pending, let events = try? WebSocketEvent.decode(pending), !events.isEmpty {
            webSocket.run(webSocket.machine.sendHandedOver(events))
        }
        return webSocket
    }
}
