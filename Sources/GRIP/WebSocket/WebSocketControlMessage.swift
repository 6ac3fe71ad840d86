/// A GRIP control message from a backend to the proxy over a WebSocket (grip-spec §7.4): a text message
/// `c:{"type": ...}` that the client never sees.
package enum WebSocketControlMessage: Sendable, Hashable {
    /// Subscribe to a channel (the route prefix is added by the proxy). `lastID` is P-8's resume extension:
    /// the id of the last item the client saw on the channel.
    case subscribe(channel: String, filters: [String], lastID: String?)
    /// Unsubscribe from a channel.
    case unsubscribe(channel: String)
    /// Stop talking to the backend but keep the client (publishes still reach it).
    case detach
    /// Set or clear (`nil`) the session id.
    case session(id: String?)
    /// Set or delete (`nil`) a subscription meta value, for filters.
    case setMeta(name: String, value: String?)
    /// Send `message` to the client whenever it was idle (or at every interval) for `timeout` seconds;
    /// without a message, stop.
    case keepAlive(message: Message?, timeout: Int, mode: KeepAliveMode)
    /// Send `message` after `timeout` seconds unless another delayed message replaces it.
    case sendDelayed(message: Message, timeout: Int)
    /// Send the pending delayed message now.
    case flushDelayed
    /// Close the client with this code and reason.
    case close(code: UInt16?, reason: String)
    /// A type this proxy does not know: logged and ignored.
    case unknown(type: String)

    /// A message the proxy sends to the client on the backend's behalf.
    package struct Message: Sendable, Hashable, Codable {
        /// The frame type (`text`, `binary`, `ping` or `pong`).
        package var type: WSMessageFormat.MessageType
        /// The payload.
        package var content: [UInt8]

        package init(type: WSMessageFormat.MessageType, content: [UInt8]) {
            self.type = type
            self.content = content
        }
    }

    /// When a keep-alive is sent.
    package enum KeepAliveMode: String, Sendable, Hashable, Codable {
        /// After `timeout` seconds without any message to the client.
        case idle
        /// Every `timeout` seconds.
        case interval
    }

    /// The prefix that marks a control message.
    package static let prefix: [UInt8] = Array("c:".utf8)

    /// Parses a control message's JSON (the text after `c:`).
    ///
    /// - Throws: ``WebSocketControlError`` when it is not a JSON object with a valid `type` and fields.
    package init(json: [UInt8]) throws(WebSocketControlError) {
        guard case .object(let object) = JSONValue.parse(json) else {
            throw .notAnObject
        }
        guard let type = object["type"]?.stringValue else {
            throw .missingField("type")
        }
        switch type {
        case "subscribe":
            guard let channel = object["channel"]?.stringValue, !channel.isEmpty else {
                throw .missingField("channel")
            }
            var filters: [String] = []
            if case .array(let values) = object["filters"] {
                filters = values.compactMap(\.stringValue)
            }
            self = .subscribe(channel: channel, filters: filters, lastID: object["last-id"]?.stringValue)
        case "unsubscribe":
            guard let channel = object["channel"]?.stringValue, !channel.isEmpty else {
                throw .missingField("channel")
            }
            self = .unsubscribe(channel: channel)
        case "detach":
            self = .detach
        case "session":
            let id = object["id"]?.stringValue ?? ""
            self = .session(id: id.isEmpty ? nil : id)
        case "set-meta":
            guard let name = object["name"]?.stringValue, !name.isEmpty else {
                throw .missingField("name")
            }
            self = .setMeta(name: name, value: object["value"]?.stringValue)
        case "keep-alive":
            let mode = object["mode"]?.stringValue.flatMap(KeepAliveMode.init(rawValue:)) ?? .idle
            self = .keepAlive(
                message: try Self.message(object),
                timeout: Self.int(object["timeout"]) ?? 55,
                mode: mode
            )
        case "send-delayed":
            guard let message = try Self.message(object) else {
                throw .missingField("content")
            }
            self = .sendDelayed(message: message, timeout: Self.int(object["timeout"]) ?? 1)
        case "flush-delayed":
            self = .flushDelayed
        case "close":
            let code = Self.int(object["code"]).flatMap { UInt16(exactly: $0) }
            self = .close(code: code, reason: object["reason"]?.stringValue ?? "")
        default:
            self = .unknown(type: type)
        }
    }

    private static func int(_ value: JSONValue?) -> Int? {
        switch value {
        case .int(let number): number
        case .double(let number): Int(exactly: number.rounded())
        default: nil
        }
    }

    /// `content` or `content-bin` with `message-type`; nil when neither is given.
    private static func message(_ object: [String: JSONValue]) throws(WebSocketControlError) -> Message? {
        var type = WSMessageFormat.MessageType.text
        if let name = object["message-type"]?.stringValue {
            guard let parsed = WSMessageFormat.MessageType(rawValue: name) else {
                throw .badField("message-type")
            }
            type = parsed
        }
        if let text = object["content"]?.stringValue {
            return Message(type: type, content: Array(text.utf8))
        }
        if let encoded = object["content-bin"]?.stringValue {
            guard let bytes = Base64.decode(encoded) else {
                throw .badField("content-bin")
            }
            return Message(type: object["message-type"] == nil ? .binary : type, content: bytes)
        }
        return nil
    }
}

/// Why a control message was refused.
package enum WebSocketControlError: Error, Hashable, CustomStringConvertible {
    /// Not a JSON object.
    case notAnObject
    /// A required field is absent or empty.
    case missingField(String)
    /// A field has a value of the wrong kind.
    case badField(String)

    package var description: String {
        switch self {
        case .notAnObject: "control message is not a JSON object"
        case .missingField(let name): "control message lacks '\(name)'"
        case .badField(let name): "control message has an invalid '\(name)'"
        }
    }
}
