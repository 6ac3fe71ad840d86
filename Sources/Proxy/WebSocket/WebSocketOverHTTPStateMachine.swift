import Foundation
import GRIP
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The decisions of one WebSocket-over-HTTP connection (grip-spec §7.2-7.4), without sockets or timers: each
/// method is an event (from the client, the backend, a timer or the GRIP layer) and returns the actions
/// ``WebSocketOverHTTP`` carries out, in order.
///
/// The client's messages become requests of `application/websocket-events`, one in flight at a time; messages
/// arriving meanwhile are batched into the next. The reply to `OPEN` decides between the upgrade and relaying a
/// refusal; the events of every later reply are applied to the client one by one (``nextBackendEvent()``), because
/// applying one (a GRIP control message) can change the state before the next.
struct WebSocketOverHTTPStateMachine {
    /// Most message content sent in one backend request (grip-spec §7.2).
    static let maxRequestContent = 200_000
    /// Shortest `Keep-Alive-Interval` honoured (grip-spec §7.2).
    static let minKeepAliveInterval = 20
    /// Attempts made again at a request that could not connect, 1, 2, 4, 8 and 16 s apart (grip-spec §7.2).
    static let maxConnectRetries = 5

    enum Action: Equatable {
        /// Send a request with these events; `retry` sends the one in flight again, on a fresh connection.
        case send([WebSocketEvent], retry: Bool)
        /// Call ``retryTimerFired()`` after ``retryDelay(attempt:jitterMilliseconds:)``.
        case retryLater(attempt: Int)
        /// Answer the client `101` with these headers (plus `Sec-WebSocket-Accept`); GRIP is on when the backend's
        /// `extensions` name it. When the client is gone, tell ``upgradeFailed()``.
        case upgrade(HTTPHeaders, extensions: [String])
        /// Drop the request in flight (the client left before the upgrade).
        case abandonRequest
        case respondBadGateway
        case relayRefusal(HTTPResponseStatus, HTTPHeaders, ByteBuffer)
        /// Apply the reply's events: ``nextBackendEvent()`` until nil, then ``backendEventsApplied()``.
        case applyBackendEvents
        /// A message from the backend, for the GRIP layer (prefix, control messages).
        case toGrip([UInt8], WebSocketOpcode)
        /// A ping or pong for the client.
        case sendToClient(WebSocketOpcode, [UInt8])
        /// Close the client: start the close handshake, or with `now` answer the client's and drop the connection.
        case closeClient(code: UInt16?, reason: String, now: Bool)
        case abortClient
        /// The client is closing: unsubscribe it and stop the GRIP and keep-alive timers.
        case endSession
        /// Call ``keepAliveTimerFired()`` in so many seconds (replacing any earlier timer).
        case armKeepAlive(seconds: Int)
        case cancelKeepAlive
        case log(Logger.Level, String, [String: String])
    }

    private(set) var session: WebSocketOverHTTPSession
    /// The events of the last reply still to apply.
    private var backendEvents: ArraySlice<WebSocketEvent> = []

    init(session: WebSocketOverHTTPSession) {
        self.session = session
    }

    /// The delay before retry `attempt` (1...``maxConnectRetries``): 1, 2, 4, 8, 16 s, plus up to a second.
    static func retryDelay(attempt: Int, jitterMilliseconds: Int64) -> TimeAmount {
        .milliseconds((1 << Int64(attempt - 1)) * 1000 + jitterMilliseconds)
    }

    // MARK: - Requests

    /// The request goes to another target from now on (failing over while opening).
    mutating func setOneEventPerRequest(_ oneEvent: Bool) {
        self.session.oneEventPerRequest = oneEvent
    }

    /// Sends `OPEN`; its reply decides between the upgrade and relaying a refusal.
    mutating func start() -> [Action] {
        self.session.queued = [.open]
        return self.sendNext()
    }

    /// Sends the queued events in one request, unless one is in flight. With `poll`, sends even when nothing is
    /// queued (a keep-alive poll, grip-spec §7.2).
    private mutating func sendNext(poll: Bool = false) -> [Action] {
        guard self.session.inFlight == nil, !self.session.queued.isEmpty || poll, self.session.phase != .detached
        else { return [] }
        var events: [WebSocketEvent] = []
        var size = 0
        while let event = self.session.queued.first {
            let eventSize = event.contentSize
            if !events.isEmpty && (self.session.oneEventPerRequest || size + eventSize > Self.maxRequestContent) {
                break
            }
            events.append(event)
            size += eventSize
            self.session.queued.removeFirst()
        }
        self.session.inFlight = events
        self.session.connectRetries = 0
        return [.cancelKeepAlive, .send(events, retry: false)]
    }

    /// Events an earlier server took from the client but had not sent to the backend (a restart): they go first.
    mutating func sendHandedOver(_ events: [WebSocketEvent]) -> [Action] {
        self.session.queued = events + self.session.queued
        return self.sendNext()
    }

    /// No target took the request's connection: it is tried again later (grip-spec §7.2), except `OPEN`.
    mutating func connectFailed(_ reason: String) -> [Action] {
        guard self.session.inFlight != nil else { return [] }
        guard self.session.phase != .opening, self.session.connectRetries < Self.maxConnectRetries else {
            return self.requestFailed(reason)
        }
        self.session.connectRetries += 1
        return [.retryLater(attempt: self.session.connectRetries)]
    }

    mutating func retryTimerFired() -> [Action] {
        guard let events = self.session.inFlight else { return [] }
        return [.send(events, retry: true)]
    }

    /// The request in flight failed: timed out, the connection failed, or the reply was too large.
    mutating func requestFailed(_ reason: String) -> [Action] {
        guard self.session.inFlight != nil else { return [] }
        self.session.inFlight = nil
        let log = Action.log(.debug, "WebSocket-over-HTTP request failed", ["reason": reason])
        switch self.session.phase {
        case .opening:
            self.session.phase = .closing
            return [log, .respondBadGateway]
        case .open:
            return [log] + self.closeClient(code: 1011, reason: "backend unavailable")
        case .closing:
            guard let close = self.session.clientClose else { return [log] }
            self.session.clientClose = nil
            return [
                log, .closeClient(code: close.code, reason: String(decoding: close.reason, as: UTF8.self), now: true),
            ]
        case .detached:
            return [log]
        }
    }

    // MARK: - Replies

    /// The backend's whole reply to the request in flight.
    mutating func replied(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) -> [Action] {
        guard let sent = self.session.inFlight else { return [] }
        self.session.inFlight = nil
        let isEvents = status == .ok && headers.first(name: "content-type") == WebSocketEvent.contentType
        let events = isEvents ? try? WebSocketEvent.decode(Array(body.readableBytesView)) : nil
        switch self.session.phase {
        case .opening:
            return self.openReplied(status: status, headers: headers, body: body, isEvents: isEvents, events: events)
        case .closing:
            return self.closingReplied(events)
        case .open, .detached:
            guard let events else {
                let log = Action.log(
                    .info,
                    "backend answered a WebSocket-over-HTTP request with an error",
                    ["p8.status": "\(status.code)"]
                )
                return [log] + self.closeClient(code: 1011, reason: "backend error")
            }
            self.readReplyHeaders(headers)
            if let value = headers.first(name: "content-bytes-accepted"),
                let accepted = Int(value.trimmingCharacters(in: .whitespaces)), accepted >= 0
            {
                // What the backend did not take goes first in the next request (Pushpin 1.41, grip-spec §7.3).
                do {
                    self.session.queued.insert(
                        contentsOf: try WebSocketEvent.unaccepted(sent, accepted: accepted),
                        at: 0
                    )
                } catch {
                    let log = Action.log(
                        .info,
                        "backend answered with a bad Content-Bytes-Accepted",
                        ["error": "\(error)"]
                    )
                    return [log] + self.closeClient(code: 1011, reason: "backend error")
                }
            }
            self.backendEvents = events[...]
            return [.applyBackendEvents]
        }
    }

    private mutating func openReplied(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer,
        isEvents: Bool,
        events: [WebSocketEvent]?
    ) -> [Action] {
        self.session.phase = .closing
        guard let events else {
            guard isEvents else {
                let limit = WebSocketClientHandshake.maxRejectionBody
                let body = body.getSlice(at: body.readerIndex, length: min(body.readableBytes, limit)) ?? body
                return [.relayRefusal(status, headers, body)]
            }
            return [.log(.debug, "backend answered OPEN with malformed events", [:]), .respondBadGateway]
        }
        self.readReplyHeaders(headers)
        guard events.first == .open || (events.isEmpty && headers.first(name: "keep-alive-interval") != nil) else {
            return [.log(.debug, "backend did not accept the WebSocket with OPEN", [:]), .respondBadGateway]
        }
        self.session.phase = .open
        self.session.clientAttached = true
        self.backendEvents = events.dropFirst()
        return [
            .upgrade(Self.upgradeHeaders(headers), extensions: headers["sec-websocket-extensions"]),
            .applyBackendEvents,
        ]
    }

    /// The reply to the last request (`CLOSE` or `DISCONNECT`) only completes a close handshake.
    private mutating func closingReplied(_ events: [WebSocketEvent]?) -> [Action] {
        guard self.session.queued.isEmpty else {
            // The CLOSE or DISCONNECT is still to be sent: the client no longer takes messages.
            return self.sendNext()
        }
        guard let close = self.session.clientClose else { return [] }
        self.session.clientClose = nil
        if case .close(let code, let reason)? = events?.first(where: { if case .close = $0 { true } else { false } }) {
            return [.closeClient(code: code, reason: String(decoding: reason, as: UTF8.self), now: true)]
        }
        return [.closeClient(code: close.code, reason: String(decoding: close.reason, as: UTF8.self), now: true)]
    }

    /// The `101`'s headers: the backend's, without its framing, `Set-Meta-*` and the WebSocket-over-HTTP ones.
    private static func upgradeHeaders(_ reply: HTTPHeaders) -> HTTPHeaders {
        let excluded: Set<String> = [
            "content-type", "content-length", "keep-alive-interval", "sec-websocket-extensions", "connection",
            "upgrade", "transfer-encoding", "keep-alive", "sec-websocket-accept",
        ]
        var headers = HTTPHeaders()
        for header in reply {
            let name = header.name.lowercased()
            if !excluded.contains(name) && !name.hasPrefix("set-meta-") {
                headers.add(name: header.name, value: header.value)
            }
        }
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        return headers
    }

    /// `Set-Meta-*` and `Keep-Alive-Interval` (grip-spec §7.3).
    private mutating func readReplyHeaders(_ headers: HTTPHeaders) {
        for header in headers where header.name.lowercased().hasPrefix("set-meta-") {
            let name = String(header.name.dropFirst("set-meta-".count))
            self.session.meta[name] = header.value.isEmpty ? nil : header.value
        }
        if let value = headers.first(name: "keep-alive-interval") {
            if let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds > 0 {
                self.session.keepAliveInterval = max(seconds, Self.minKeepAliveInterval)
            } else {
                self.session.keepAliveInterval = nil
            }
        }
    }

    /// The client could not be upgraded after all (its connection is gone): nothing more to send.
    mutating func upgradeFailed() {
        self.session.phase = .closing
        self.session.clientAttached = false
        self.session.queued = []
        self.backendEvents = []
    }

    /// The actions for the reply's next event, or nil when all are applied (or the client is gone or closing).
    mutating func nextBackendEvent() -> [Action]? {
        guard self.session.clientAttached, let event = self.backendEvents.popFirst() else {
            self.backendEvents = []
            return nil
        }
        switch event {
        case .text(let content):
            return [.toGrip(content, .text)]
        case .binary(let content):
            return [.toGrip(content, .binary)]
        case .ping(let content):
            return [.sendToClient(.ping, content)]
        case .pong(let content):
            return [.sendToClient(.pong, content)]
        case .close(let code, let reason):
            self.session.phase = .closing
            self.backendEvents = []
            return [.endSession, .closeClient(code: code, reason: String(decoding: reason, as: UTF8.self), now: false)]
        case .open, .disconnect:
            self.session.phase = .closing
            self.backendEvents = []
            return [.endSession, .abortClient]
        }
    }

    /// The reply is applied: the keep-alive poll is armed again, and what queued meanwhile is sent.
    mutating func backendEventsApplied() -> [Action] {
        let keepAlive: Action
        if let interval = self.session.keepAliveInterval, self.session.phase == .open {
            keepAlive = .armKeepAlive(seconds: interval)
        } else {
            keepAlive = .cancelKeepAlive
        }
        return [keepAlive] + self.sendNext()
    }

    mutating func keepAliveTimerFired() -> [Action] {
        self.sendNext(poll: true)
    }

    // MARK: - The client

    /// A message, ping, pong or close from the client.
    mutating func clientMessage(_ message: WebSocketMessage) -> [Action] {
        switch self.session.phase {
        case .open:
            break
        case .detached:
            guard case .close(let code, let reason) = message else { return [] }
            self.session.phase = .closing
            return [.endSession, .closeClient(code: code, reason: String(buffer: reason), now: true)]
        case .opening, .closing:
            guard case .close = message else { return [] }
            return [.abortClient]
        }
        switch message {
        case .text(let data):
            self.session.queued.append(.text(Array(data.readableBytesView)))
        case .binary(let data):
            self.session.queued.append(.binary(Array(data.readableBytesView)))
        case .ping(let data):
            self.session.queued.append(.ping(Array(data.readableBytesView)))
        case .pong(let data):
            self.session.queued.append(.pong(Array(data.readableBytesView)))
        case .close(let code, let reason):
            let reason = Array(reason.readableBytesView)
            self.session.phase = .closing
            self.session.clientClose = .init(code: code, reason: reason)
            self.session.queued.append(.close(code: code, reason: reason))
            return [.endSession] + self.sendNext()
        }
        return self.sendNext()
    }

    /// The client's connection is gone. Without a close handshake the backend hears `DISCONNECT` (grip-spec §7.2),
    /// whose reply is ignored.
    mutating func clientClosed() -> [Action] {
        self.session.clientAttached = false
        self.backendEvents = []
        guard self.session.phase == .open else {
            self.session.phase = .closing
            return [.endSession]
        }
        self.session.phase = .closing
        self.session.queued.append(.disconnect)
        return [.endSession] + self.sendNext()
    }

    /// The client left before the upgrade completed.
    mutating func clientLeftWhileOpening() -> [Action] {
        self.session.phase = .closing
        return [.abandonRequest]
    }

    /// Closes the client on the proxy's initiative (publish, control message, backend failure, shutdown); the
    /// backend, while attached, is told with `CLOSE` (grip-spec §7.2).
    mutating func closeClient(code: UInt16?, reason: String) -> [Action] {
        var actions: [Action] = []
        switch self.session.phase {
        case .opening, .closing:
            return []
        case .open:
            self.session.queued.append(.close(code: nil, reason: []))
            actions = self.sendNext()
        case .detached:
            break
        }
        self.session.phase = .closing
        return actions + [.endSession, .closeClient(code: code, reason: reason, now: false)]
    }

    // MARK: - GRIP

    /// `detach`: the backend side is done; the client stays, for publishes.
    mutating func detach() -> [Action] {
        guard self.session.phase == .open else { return [] }
        self.session.phase = .detached
        self.session.queued = []
        return [.cancelKeepAlive]
    }

    /// `refresh`: a request now, even with nothing queued; a request already in flight answers for it.
    mutating func refresh() -> [Action] {
        guard self.session.phase == .open else { return [] }
        return self.sendNext(poll: true)
    }
}
