import GRIP
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The decisions of one passthrough WebSocket (grip-spec §7.1, §7.6), without sockets: each method is an event
/// (the backend's handshake, a message or close from either side, a side gone, a GRIP control message) and
/// returns the one action ``WebSocketPassthrough`` carries out. Messages relayed one for one, so one action each.
struct WebSocketPassthroughStateMachine {
    /// One of the two connections.
    enum Side: Equatable {
        case client
        case backend

        var other: Side { self == .client ? .backend : .client }
    }

    enum Phase: Equatable {
        /// The upgrade request is on its way to the backend.
        case connecting
        /// Both sides upgraded.
        case open
        /// A close handshake is under way.
        case closing
        /// Both sides are gone, or the handshake failed.
        case closed
    }

    enum Action: Equatable {
        case none
        /// Send the handshake on the new backend connection and arm its timeout.
        case sendHandshake
        /// A connection that came too late (the client left, or the handshake failed): close it.
        case closeConnection
        /// Drop the backend connection and its timeout: the client left before the upgrade.
        case abandon
        /// Drop the backend connection and its timeout, and answer the client `502`.
        case respondBadGateway
        /// The backend refused the handshake: drop its connection and relay its response.
        case relayRefusal(HTTPResponseStatus, HTTPHeaders, ByteBuffer)
        /// Switch both connections to WebSocket framing and answer the client `101` with `headers`. With
        /// `gripMessages`, the backend's messages are reassembled for ``toGrip(_:_:)``; else frames are relayed
        /// as they come (grip-spec §7.6).
        case upgrade(HTTPHeaders, extensions: [String], gripMessages: Bool)
        case forward(WebSocketMessage, to: Side)
        /// A whole message from the backend, for the GRIP layer (prefix, control messages).
        case toGrip(ByteBuffer, WebSocketOpcode)
        /// End the GRIP session and pass a close on: the start of a handshake, or with `now` its answer (then
        /// both connections end).
        case forwardClose(code: UInt16?, reason: String, to: Side, now: Bool)
        /// Detached: end the GRIP session and answer the client's close; nothing goes to the backend.
        case answerClose(code: UInt16?, reason: String)
        /// `detach`: close the backend connection at once; the client stays.
        case closeBackend
        /// End the GRIP session and start the close handshake with the client, and with the backend too.
        case closeBoth(code: UInt16?, reason: String, backend: Bool)
        /// The backend connection is gone after a detach: forget it.
        case forgetBackend
        /// `side` is gone: end the GRIP session and the other side, dropping it (`abort`) or closing it as
        /// `1011`.
        case ended(Side, abortOther: Bool)
    }

    private(set) var phase = Phase.connecting
    /// A `detach` control message closed the backend side; the client stays, for publishes.
    private(set) var detached = false
    /// Whether the backend's messages go to the GRIP layer (it enabled GRIP on a route that offers it).
    private(set) var gripMessages = false
    /// Whether the backend is offered the GRIP extension.
    let offersGrip: Bool

    init(offersGrip: Bool) {
        self.offersGrip = offersGrip
    }

    // MARK: - Handshake

    /// A connection to the backend is made.
    mutating func connected() -> Action {
        self.phase == .connecting ? .sendHandshake : .closeConnection
    }

    /// The handshake failed on the way: no target took the connection, it failed, or it timed out.
    mutating func failed() -> Action {
        guard self.phase == .connecting else { return .none }
        self.phase = .closed
        return .respondBadGateway
    }

    /// The backend answered the handshake.
    mutating func handshakeAnswered(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) -> Action {
        guard self.phase == .connecting else { return .none }
        guard status == .switchingProtocols else {
            self.phase = .closed
            return .relayRefusal(status, headers, body)
        }
        let extensions = headers["sec-websocket-extensions"]
        var clientHeaders = headers
        clientHeaders.remove(name: "sec-websocket-extensions")
        self.gripMessages = self.offersGrip && WebSocketHandshake.gripMessagePrefix(extensions: extensions) != nil
        self.phase = .open
        return .upgrade(clientHeaders, extensions: extensions, gripMessages: self.gripMessages)
    }

    /// The backend's connection could not be switched to WebSocket framing (the client is not upgraded yet).
    mutating func upgradeFailed() -> Action {
        self.phase = .closed
        return .respondBadGateway
    }

    /// The client left before the upgrade completed.
    mutating func clientLeftWhileOpening() -> Action {
        guard self.phase == .connecting else { return .none }
        self.phase = .closed
        return .abandon
    }

    // MARK: - Relaying

    /// A whole message, ping, pong or close from `side`.
    mutating func message(_ message: WebSocketMessage, from side: Side) -> Action {
        if self.detached {
            // Only the client is left: its messages go nowhere; its close is answered.
            guard side == .client, case .close(let code, let reason) = message else { return .none }
            return .answerClose(code: code, reason: String(buffer: reason))
        }
        guard self.phase == .open || self.phase == .closing else { return .none }
        switch message {
        case .text(let data) where side == .backend && self.gripMessages:
            return .toGrip(data, .text)
        case .binary(let data) where side == .backend && self.gripMessages:
            return .toGrip(data, .binary)
        case .close(let code, let reason):
            // One side starts the close handshake: pass it on, and its answer back (which ends both).
            let starts = self.phase == .open
            self.phase = .closing
            return .forwardClose(code: code, reason: String(buffer: reason), to: side.other, now: !starts)
        case .text, .binary, .ping, .pong:
            return .forward(message, to: side.other)
        }
    }

    /// Where a data frame from `side` is relayed, unchanged, or nil when it goes nowhere.
    func fragmentTarget(from side: Side) -> Side? {
        guard !self.detached, self.phase == .open || self.phase == .closing else { return nil }
        return side.other
    }

    /// `side`'s connection is gone.
    mutating func closed(_ side: Side) -> Action {
        if side == .backend && self.detached {
            // The backend side closed after a detach: the client stays.
            return .forgetBackend
        }
        let wasOpen = self.phase == .open
        self.phase = .closed
        // The client vanished (nothing to tell the backend but the end of the connection), or the close
        // handshake is done; else the backend went away under the client.
        return .ended(side, abortOther: side == .client || !wasOpen)
    }

    // MARK: - GRIP

    /// Closes the backend connection; the client stays and still receives publishes (grip-spec §7.4).
    mutating func detach() -> Action {
        guard self.phase == .open, !self.detached else { return .none }
        self.detached = true
        return .closeBackend
    }

    /// Closes the client with this code and reason, and the backend with the same (a control message, a
    /// published close, shutdown).
    mutating func close(code: UInt16?, reason: String) -> Action {
        guard self.phase == .open else { return .none }
        self.phase = .closing
        return .closeBoth(code: code, reason: reason, backend: !self.detached)
    }
}
