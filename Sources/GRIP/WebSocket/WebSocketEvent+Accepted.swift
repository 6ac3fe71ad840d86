extension WebSocketEvent {
    /// The content bytes of an event as `Content-Bytes-Accepted` counts them: a message's payload, a close's code
    /// and reason; none for `OPEN` and `DISCONNECT`.
    package var acceptedContentSize: Int {
        switch self {
        case .text(let content), .binary(let content), .ping(let content), .pong(let content): content.count
        case .close(let code, let reason): code == nil ? 0 : 2 + reason.count
        case .open, .disconnect: 0
        }
    }

    /// What of a WebSocket-over-HTTP request's `events` the backend did not accept, when it answered with
    /// `Content-Bytes-Accepted: accepted` (Pushpin 1.41): the rest of the first message it took only part of, and
    /// every event after it, to send again at the head of the next request.
    ///
    /// - Throws: ``ContentBytesAcceptedError`` when the backend accepted more than was sent, or part of a close.
    package static func unaccepted(
        _ events: [WebSocketEvent],
        accepted: Int
    ) throws(ContentBytesAcceptedError) -> [WebSocketEvent] {
        let offered = events.reduce(0) { $0 + $1.acceptedContentSize }
        guard accepted <= offered else {
            throw ContentBytesAcceptedError("Content-Bytes-Accepted \(accepted) is more than the \(offered) bytes sent")
        }
        var left = accepted
        for (index, event) in events.enumerated() {
            let size = event.acceptedContentSize
            if case .close = event {
                // Once all content before it is taken, a close is taken whole or not at all.
                guard left == 0 || left == size else {
                    throw ContentBytesAcceptedError("Content-Bytes-Accepted takes part of a close")
                }
                if left == 0 && size > 0 {
                    return Array(events[index...])
                }
                left -= size
                continue
            }
            if size > left {
                guard let rest = event.droppingContent(left) else { return Array(events[index...]) }
                return [rest] + events[(index + 1)...]
            }
            left -= size
        }
        return []
    }

    /// The same message without its first `count` content bytes (nil for events without content or `count` 0).
    private func droppingContent(_ count: Int) -> WebSocketEvent? {
        guard count > 0 else { return nil }
        switch self {
        case .text(let content): return .text(Array(content.dropFirst(count)))
        case .binary(let content): return .binary(Array(content.dropFirst(count)))
        case .ping(let content): return .ping(Array(content.dropFirst(count)))
        case .pong(let content): return .pong(Array(content.dropFirst(count)))
        case .open, .close, .disconnect: return nil
        }
    }
}

/// A `Content-Bytes-Accepted` that does not fit the request it answers.
package struct ContentBytesAcceptedError: Error, Hashable, CustomStringConvertible {
    package var description: String

    init(_ description: String) {
        self.description = description
    }
}
