extension PublishFormats {
    /// The formats as canonical JSON, for the store: compact, keys sorted, every field explicit (`action`,
    /// `type`), bytes as `body`/`content` when they are UTF-8 and as base64 `body-bin`/`content-bin` otherwise,
    /// headers as a list of pairs. ``init(storedJSON:)`` reads it back to an equal value (for formats produced
    /// by the parsers, whose non-`send` actions carry no other fields).
    package func storedJSON() -> [UInt8] {
        var members: [String: JSONValue] = [:]
        if let format = self.httpResponse {
            members["http-response"] = format.jsonValue
        }
        if let format = self.httpStream {
            members["http-stream"] = format.jsonValue
        }
        if let format = self.wsMessage {
            members["ws-message"] = format.jsonValue
        }
        return JSONValue.object(members).encoded()
    }

    /// Reads formats written by ``storedJSON()`` (or any formats object in publish JSON).
    ///
    /// - Throws: ``PublishError`` when the bytes are not a valid formats object.
    package init(storedJSON: [UInt8]) throws(PublishError) {
        guard case .object(let members)? = JSONValue.parse(storedJSON) else {
            throw PublishError(.invalidJSON, "stored formats are not a JSON object")
        }
        do {
            try self.init(wire: members.mapValues(WireValue.init), isJSON: true)
        } catch {
            throw PublishError(error.isForbiddenHeader ? .forbiddenHeader : .invalidItem, error.message)
        }
    }

    /// `content`/`body` when the bytes are UTF-8, else the `-bin` key with base64.
    static func bytesMember(_ key: String, _ bytes: [UInt8], into members: inout [String: JSONValue]) {
        if let text = String(validating: bytes, as: UTF8.self) {
            members[key] = .string(text)
        } else {
            members[key + "-bin"] = .string(Base64.encode(bytes))
        }
    }

    static func filtersMember(_ filters: [String]?, into members: inout [String: JSONValue]) {
        if let filters {
            members["content-filters"] = .array(filters.map(JSONValue.string))
        }
    }
}

extension HTTPResponseFormat {
    var jsonValue: JSONValue {
        var members: [String: JSONValue] = ["action": .string(self.action.rawValue)]
        guard self.action == .send else {
            return .object(members)
        }
        if let code = self.code {
            members["code"] = .int(code)
        }
        if let reason = self.reason {
            members["reason"] = .string(reason)
        }
        members["headers"] = .array(self.headers.map { .array([.string($0.name), .string($0.value)]) })
        switch self.body {
        case .bytes(let bytes):
            PublishFormats.bytesMember("body", bytes, into: &members)
        case .patch(let operations):
            members["body-patch"] = .array(operations)
        }
        PublishFormats.filtersMember(self.contentFilters, into: &members)
        return .object(members)
    }
}

extension HTTPStreamFormat {
    var jsonValue: JSONValue {
        var members: [String: JSONValue] = ["action": .string(self.action.rawValue)]
        guard self.action == .send else {
            return .object(members)
        }
        PublishFormats.bytesMember("content", self.content, into: &members)
        PublishFormats.filtersMember(self.contentFilters, into: &members)
        return .object(members)
    }
}

extension WSMessageFormat {
    var jsonValue: JSONValue {
        var members: [String: JSONValue] = ["action": .string(self.action.rawValue)]
        switch self.action {
        case .send:
            members["type"] = .string(self.type.rawValue)
            PublishFormats.bytesMember("content", self.content, into: &members)
            PublishFormats.filtersMember(self.contentFilters, into: &members)
        case .close:
            if let code = self.closeCode {
                members["code"] = .int(code)
            }
            if let reason = self.closeReason {
                members["reason"] = .string(reason)
            }
        case .hint, .refresh:
            break
        }
        return .object(members)
    }
}
