/// One event of WebSocket-over-HTTP (grip-spec §7.2-7.3), as carried in an `application/websocket-events`
/// body: each is a line `TYPE[ <hex length>]\r\n`, followed by the content and `\r\n` when a length is given.
package enum WebSocketEvent: Sendable, Hashable {
    /// The connection opens (first request), or the backend accepts it (first reply).
    case open
    /// A text message.
    case text([UInt8])
    /// A binary message.
    case binary([UInt8])
    /// A ping, with its payload (possibly empty).
    case ping([UInt8])
    /// A pong, with its payload (possibly empty).
    case pong([UInt8])
    /// A close, with the status code and reason when given.
    case close(code: UInt16?, reason: [UInt8])
    /// The connection went away without a close handshake (or, from the backend: drop the client).
    case disconnect

    /// The content-type of a WebSocket-events body.
    package static let contentType = "application/websocket-events"

    /// The event's bytes on the wire.
    package var encoded: [UInt8] {
        var out: [UInt8] = []
        self.encode(into: &out)
        return out
    }

    /// Appends the event's bytes to `out`.
    package func encode(into out: inout [UInt8]) {
        switch self {
        case .open:
            Self.append(name: "OPEN", content: nil, to: &out)
        case .text(let content):
            Self.append(name: "TEXT", content: content, to: &out)
        case .binary(let content):
            Self.append(name: "BINARY", content: content, to: &out)
        case .ping(let content):
            Self.append(name: "PING", content: content.isEmpty ? nil : content, to: &out)
        case .pong(let content):
            Self.append(name: "PONG", content: content.isEmpty ? nil : content, to: &out)
        case .close(let code, let reason):
            guard let code else {
                Self.append(name: "CLOSE", content: nil, to: &out)
                return
            }
            Self.append(name: "CLOSE", content: [UInt8(code >> 8), UInt8(code & 0xff)] + reason, to: &out)
        case .disconnect:
            Self.append(name: "DISCONNECT", content: nil, to: &out)
        }
    }

    /// The bytes of several events, in order.
    package static func encode(_ events: [WebSocketEvent]) -> [UInt8] {
        var out: [UInt8] = []
        for event in events {
            event.encode(into: &out)
        }
        return out
    }

    private static func append(name: String, content: [UInt8]?, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        if let content {
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: String(content.count, radix: 16).utf8)
            out.append(contentsOf: [13, 10])
            out.append(contentsOf: content)
        }
        out.append(contentsOf: [13, 10])
    }

    /// Parses a WebSocket-events body.
    ///
    /// - Throws: ``WebSocketEventError`` when the body is not a sequence of well-formed events.
    package static func decode(_ body: [UInt8]) throws(WebSocketEventError) -> [WebSocketEvent] {
        var events: [WebSocketEvent] = []
        var position = 0
        while position < body.count {
            guard let lineEnd = Self.lineEnd(in: body, from: position) else {
                throw .unterminatedLine
            }
            let line = body[position..<lineEnd]
            position = lineEnd + 2
            var content: [UInt8]?
            var name = line
            if let space = line.firstIndex(of: UInt8(ascii: " ")) {
                name = line[line.startIndex..<space]
                let digits = line[(space + 1)...]
                guard !digits.isEmpty, digits.count <= 8,
                    let length = Int(String(decoding: digits, as: UTF8.self), radix: 16), length >= 0
                else {
                    throw .badLength
                }
                guard position + length + 2 <= body.count, body[position + length] == 13,
                    body[position + length + 1] == 10
                else {
                    throw .truncatedContent
                }
                content = Array(body[position..<(position + length)])
                position += length + 2
            }
            events.append(try Self.event(named: String(decoding: name, as: UTF8.self), content: content))
        }
        return events
    }

    private static func lineEnd(in body: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + 1 < body.count {
            if body[index] == 13 && body[index + 1] == 10 {
                return index
            }
            index += 1
        }
        return nil
    }

    private static func event(named name: String, content: [UInt8]?) throws(WebSocketEventError) -> WebSocketEvent {
        switch name {
        case "OPEN":
            return .open
        case "TEXT":
            return .text(content ?? [])
        case "BINARY":
            return .binary(content ?? [])
        case "PING":
            return .ping(content ?? [])
        case "PONG":
            return .pong(content ?? [])
        case "CLOSE":
            guard let content, !content.isEmpty else {
                return .close(code: nil, reason: [])
            }
            guard content.count >= 2 else {
                throw .badCloseCode
            }
            return .close(code: UInt16(content[0]) << 8 | UInt16(content[1]), reason: Array(content[2...]))
        case "DISCONNECT":
            return .disconnect
        default:
            throw .unknownEvent(name)
        }
    }
}

/// Why a WebSocket-events body could not be parsed.
package enum WebSocketEventError: Error, Hashable, CustomStringConvertible {
    /// An event line without its `\r\n`.
    case unterminatedLine
    /// A length that is not hexadecimal digits.
    case badLength
    /// Fewer content bytes than the length says, or no `\r\n` after them.
    case truncatedContent
    /// A `CLOSE` whose content is one byte (no room for the code).
    case badCloseCode
    /// An event type that does not exist.
    case unknownEvent(String)

    package var description: String {
        switch self {
        case .unterminatedLine: "event line not terminated"
        case .badLength: "invalid content length"
        case .truncatedContent: "content shorter than its length"
        case .badCloseCode: "CLOSE content too short for a code"
        case .unknownEvent(let name): "unknown event type \(name)"
        }
    }
}
