extension PublishFormats {
    /// The format names P-8 knows, in the order they are parsed.
    static let names = ["http-response", "http-stream", "ws-message"]

    /// Parses the formats object of an item (unknown names are ignored).
    init(wire: [String: WireValue], isJSON: Bool) throws(FieldError) {
        self.init()
        if let value = wire["http-response"] {
            self.httpResponse = try HTTPResponseFormat(wire: value, isJSON: isJSON)
        }
        if let value = wire["http-stream"] {
            self.httpStream = try HTTPStreamFormat(wire: value, isJSON: isJSON)
        }
        if let value = wire["ws-message"] {
            self.wsMessage = try WSMessageFormat(wire: value, isJSON: isJSON)
        }
    }
}

extension PublishAction {
    /// Reads `action`; `allowed` lists the actions this format accepts besides `send`.
    static func read(_ reader: ObjectReader, allowed: [PublishAction]) throws(FieldError) -> PublishAction {
        guard let text = try reader.string("action") else {
            return .send
        }
        guard let action = PublishAction(rawValue: text), action == .send || allowed.contains(action) else {
            throw FieldError(message: "\(reader.name) contains 'action' with unknown value")
        }
        return action
    }
}

extension HTTPResponseFormat {
    init(wire: WireValue, isJSON: Bool) throws(FieldError) {
        let reader = try ObjectReader(wire, name: "'http-response'", isJSON: isJSON)
        self.init(action: try PublishAction.read(reader, allowed: [.hint, .close]))
        guard self.action == .send else {
            return
        }
        self.code = try reader.int("code", in: Instruct.statusCodes)
        if let reason = try reader.string("reason"), !reason.isEmpty {
            guard HeaderField.isValidValue(reason) else {
                throw reader.invalidValue("reason", "control characters")
            }
            self.reason = reason
        }
        self.headers = try reader.headers("headers") ?? []
        for field in self.headers {
            try Self.check(field)
        }
        self.contentFilters = try reader.strings(
            "content-filters",
            elementMessage: "content-filters contains element with wrong type"
        )
        if let body = try reader.binary("body-bin") {
            self.body = .bytes(body)
        } else if let body = try reader.content("body") {
            self.body = .bytes(body)
        } else if let patch = try reader.list("body-patch") {
            self.body = .patch(patch.map(\.json))
        } else {
            let fields = isJSON ? "'body', 'body-bin', or 'body-patch'" : "'body' or 'body-patch'"
            throw FieldError(message: "'http-response' does not contain \(fields)")
        }
    }

    /// Refuses a published header that would break the response: a name that is not a token, a value with CR,
    /// LF, NUL or other control characters, a hop-by-hop header or `Content-Length` (the proxy frames the body).
    static func check(_ field: HeaderField) throws(FieldError) {
        guard HeaderField.isValidName(field.name), HeaderField.isValidValue(field.value) else {
            throw FieldError(
                message:
                    "'http-response' contains header '\(HeaderField.printable(field.name))' with invalid characters",
                isForbiddenHeader: true
            )
        }
        let name = field.name.lowercasedASCII
        guard !HeaderField.hopByHopNames.contains(name), name != "content-length" else {
            throw FieldError(
                message: "'http-response' contains header '\(field.name)', which cannot be published",
                isForbiddenHeader: true
            )
        }
    }
}

extension HTTPStreamFormat {
    init(wire: WireValue, isJSON: Bool) throws(FieldError) {
        let reader = try ObjectReader(wire, name: "'http-stream'", isJSON: isJSON)
        self.init(action: try PublishAction.read(reader, allowed: [.hint, .close]))
        guard self.action == .send else {
            return
        }
        self.contentFilters = try reader.strings(
            "content-filters",
            elementMessage: "content-filters contains element with wrong type"
        )
        if let content = try reader.binary("content-bin") {
            self.content = content
        } else if let content = try reader.content("content") {
            self.content = content
        } else {
            let fields = isJSON ? "'content' or 'content-bin'" : "'content'"
            throw FieldError(message: "'http-stream' does not contain \(fields)")
        }
    }
}

extension WSMessageFormat {
    /// The longest close reason that fits in a close frame (125 bytes less the 2-byte code).
    static let maximumCloseReasonSize = 123

    init(wire: WireValue, isJSON: Bool) throws(FieldError) {
        let reader = try ObjectReader(wire, name: "'ws-message'", isJSON: isJSON)
        self.init(action: try PublishAction.read(reader, allowed: [.hint, .close, .refresh]))
        switch self.action {
        case .send:
            var type: MessageType?
            if let text = try reader.string("type") {
                guard let known = MessageType(rawValue: text) else {
                    throw FieldError(message: "'ws-message' contains 'type' with unknown value")
                }
                type = known
            }
            self.contentFilters = try reader.strings(
                "content-filters",
                elementMessage: "content-filters contains element with wrong type"
            )
            if let content = try reader.binary("content-bin") {
                self.content = content
                self.type = type ?? .binary
            } else if let content = try reader.content("content") {
                self.content = content
                self.type = type ?? .text
            } else if let type, type == .ping || type == .pong {
                self.type = type
            } else {
                throw FieldError(message: "'ws-message' does not contain 'content' or 'content-bin'")
            }
        case .close:
            self.closeCode = try reader.int("code", in: 0...65535)
            if let reason = try reader.string("reason"), !reason.isEmpty {
                guard reason.utf8.count <= Self.maximumCloseReasonSize else {
                    throw reader.invalidValue("reason", "longer than \(Self.maximumCloseReasonSize) bytes")
                }
                self.closeReason = reason
            }
        case .hint, .refresh:
            break
        }
    }
}
