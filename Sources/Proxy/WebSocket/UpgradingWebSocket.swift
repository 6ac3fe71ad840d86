import NIOHTTP1

/// A client's WebSocket handshake in progress, held by its ``ClientConnectionHandler`` until it upgrades the
/// connection or answers with an HTTP response.
protocol UpgradingWebSocket: AnyObject {
    init(handshake: WebSocketClientHandshake)
    /// Starts the handshake with the backend.
    func start()
    /// The client left before the handshake completed.
    func clientLeftWhileOpening()
}

/// Whether a request asks for a WebSocket upgrade (RFC 6455 §4.2.1).
func isWebSocketUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
    head.method == .GET
        && head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
        && head.headers.first(name: "sec-websocket-key") != nil
}
