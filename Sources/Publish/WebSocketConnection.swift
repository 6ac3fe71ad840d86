package import GRIP

/// A client WebSocket held by the proxy, as the publish side sees it: the seam between Publish (no NIO) and the
/// connection side, like ``HeldConnection`` for HTTP holds. Every method may be called from any thread and must
/// return at once; calls arrive in delivery order.
package protocol WebSocketConnection: AnyObject, Sendable {
    /// A published `ws-message` to send to the client as one message of `type`.
    func sendMessage(type: WSMessageFormat.MessageType, content: [UInt8])

    /// A published `close` action: close the client with this code and reason (and tell the backend).
    func close(code: UInt16?, reason: String)

    /// P-8's resume extension: the position the client subscribed from on `channel` (as the backend named it)
    /// is older than what is retained, so items may have been missed; live items follow.
    func sendReset(channel: String)

    /// `refresh` (a published `ws-message` action, or the command socket's `refresh`): a WebSocket-over-HTTP
    /// connection makes a backend request now (with an empty body when nothing is queued); passthrough ignores
    /// it.
    func refresh()
}
