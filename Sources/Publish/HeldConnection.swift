package import GRIP

/// A client connection held by the proxy, as the publish side sees it: the seam between Publish (no NIO) and
/// the connection side. The proxy implements it; every method may be called from any thread and must return
/// at once (hop to the connection's own thread and do the work there).
///
/// The session (``HoldSession``) decides what to send; the connection does the I/O and keeps the timers of
/// its own life (response timeout, keep-alives, next-link timer), telling the session when it ends.
package protocol HeldConnection: AnyObject, Sendable {
    /// A response hold is released: send this response (its body framed with `Content-Length`) and end the
    /// hold. Called at most once.
    func sendResponse(_ response: Instruct.Response)

    /// A stream hold receives content: append it to the response body. Calls arrive in delivery order.
    func sendStreamContent(_ content: [UInt8])

    /// A stream hold ends (a published `close` action): finish the response cleanly.
    func endStream()

    /// The session lost track of a channel and the backend can fill the gap (grip-spec §5.2-5.3): a response hold
    /// re-sends the original request, a stream hold fetches its next link, with one `Grip-Last` header per entry.
    /// The session is ended by the connection before it starts the request; the backend's answer starts a new
    /// one.
    func recover(gripLast: [GripLast])

    /// A content filter failed on a delivered item, or the item's `content-filters` did not match the
    /// subscription's (grip-spec §3.7): a response hold answers `502`, a stream ends (with `message` when the route
    /// has `debug` on). The session has ended.
    func filterFailed(_ message: String)
}

/// A `Grip-Last: <channel>; last-id=<id>` header (grip-spec §5.3): the client has everything up to this id.
package struct GripLast: Sendable, Hashable {
    /// The channel, without the route prefix.
    package var channel: String
    /// The last id the client has.
    package var lastID: String

    package init(channel: String, lastID: String) {
        self.channel = channel
        self.lastID = lastID
    }

    /// The header value.
    package var headerValue: String {
        "\(self.channel); last-id=\(self.lastID)"
    }
}
