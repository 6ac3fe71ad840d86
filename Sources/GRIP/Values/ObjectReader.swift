/// Why a field of a GRIP JSON/tnetstring object was refused; `message` is worded as Pushpin words it.
struct FieldError: Error, Sendable {
    var message: String
    /// Set for published headers that would break HTTP (``PublishError/Code/forbiddenHeader``).
    var isForbiddenHeader = false
}

/// Reads the fields of one object with Pushpin's messages: `<name> does not contain '<key>'`,
/// `<name> contains '<key>' with wrong type`, `<name> contains '<key>' with invalid value`.
struct ObjectReader {
    /// The object's name in messages, e.g. `'http-stream'` or `hold`.
    var name: String
    /// The members.
    var members: [String: WireValue]
    /// Whether the input was JSON (`*-bin` fields are base64 there, raw bytes in tnetstring).
    var isJSON: Bool

    init(_ value: WireValue, name: String, isJSON: Bool) throws(FieldError) {
        guard case .map(let members) = value else {
            throw FieldError(message: "\(name) is not an object")
        }
        self.name = name
        self.members = members
        self.isJSON = isJSON
    }

    func contains(_ key: String) -> Bool {
        self.members[key] != nil
    }

    func missing(_ key: String) -> FieldError {
        FieldError(message: "\(self.name) does not contain '\(key)'")
    }

    func wrongType(_ key: String) -> FieldError {
        FieldError(message: "\(self.name) contains '\(key)' with wrong type")
    }

    func invalidValue(_ key: String, _ detail: String? = nil) -> FieldError {
        FieldError(message: "\(self.name) contains '\(key)' with invalid value" + (detail.map { " (\($0))" } ?? ""))
    }

    /// A text field; JSON `null` counts as absent.
    func string(_ key: String, required: Bool = false) throws(FieldError) -> String? {
        guard let value = self.members[key], value != .null else {
            if required {
                throw self.missing(key)
            }
            return nil
        }
        guard let text = value.text else {
            throw self.wrongType(key)
        }
        return text
    }

    /// An integer field in `range`.
    func int(_ key: String, in range: ClosedRange<Int> = 0...Int.max) throws(FieldError) -> Int? {
        guard let value = self.members[key] else {
            return nil
        }
        guard let number = value.integer else {
            throw self.wrongType(key)
        }
        guard range.contains(number) else {
            throw self.invalidValue(key)
        }
        return number
    }

    /// A boolean field.
    func bool(_ key: String) throws(FieldError) -> Bool? {
        guard let value = self.members[key] else {
            return nil
        }
        guard case .bool(let flag) = value else {
            throw self.wrongType(key)
        }
        return flag
    }

    /// A list field.
    func list(_ key: String, required: Bool = false) throws(FieldError) -> [WireValue]? {
        guard let value = self.members[key] else {
            if required {
                throw self.missing(key)
            }
            return nil
        }
        guard case .list(let elements) = value else {
            throw self.wrongType(key)
        }
        return elements
    }

    /// An object field.
    func object(_ key: String) throws(FieldError) -> WireValue? {
        guard let value = self.members[key] else {
            return nil
        }
        guard case .map = value else {
            throw self.wrongType(key)
        }
        return value
    }

    /// A list of strings; `elementMessage` when an element is not one.
    func strings(_ key: String, elementMessage: String) throws(FieldError) -> [String]? {
        guard let elements = try self.list(key) else {
            return nil
        }
        var out: [String] = []
        for element in elements {
            guard let text = element.text else {
                throw FieldError(message: elementMessage)
            }
            out.append(text)
        }
        return out
    }

    /// A content field: a string (UTF-8) or tnetstring bytes.
    func content(_ key: String) throws(FieldError) -> [UInt8]? {
        guard let value = self.members[key] else {
            return nil
        }
        guard let bytes = value.contentBytes else {
            throw self.wrongType(key)
        }
        return bytes
    }

    /// A `*-bin` field: base64 text in JSON, raw bytes in tnetstring.
    func binary(_ key: String) throws(FieldError) -> [UInt8]? {
        guard let value = self.members[key] else {
            return nil
        }
        if !self.isJSON, case .bytes(let bytes) = value {
            return bytes
        }
        guard let text = value.text else {
            throw self.wrongType(key)
        }
        guard let bytes = Base64.decode(text) else {
            throw self.invalidValue(key, "not base64")
        }
        return bytes
    }

    /// An object of strings such as `meta`; message `'<key>' contains '<member>' with wrong type`.
    func stringMap(_ key: String) throws(FieldError) -> [String: String]? {
        guard case .map(let members)? = try self.object(key) else {
            return nil
        }
        var out: [String: String] = [:]
        for (member, value) in members {
            guard let text = value.text else {
                throw FieldError(message: "'\(key)' contains '\(member)' with wrong type")
            }
            out[member] = text
        }
        return out
    }

    /// `headers`: an object `{name: value}` (sorted by name) or a list of `[name, value]` pairs (order kept).
    func headers(_ key: String) throws(FieldError) -> [HeaderField]? {
        guard let value = self.members[key] else {
            return nil
        }
        switch value {
        case .map(let members):
            var out: [HeaderField] = []
            for name in members.keys.sorted() {
                guard let text = members[name]?.text else {
                    throw FieldError(message: "headers contains '\(name)' with wrong type")
                }
                out.append(HeaderField(name: name, value: text))
            }
            return out
        case .list(let elements):
            var out: [HeaderField] = []
            for element in elements {
                guard case .list(let pair) = element else {
                    throw FieldError(message: "headers contains element with wrong type")
                }
                guard pair.count == 2 else {
                    throw FieldError(message: "headers contains list with wrong number of elements")
                }
                guard let name = pair[0].text else {
                    throw FieldError(message: "header contains name element with wrong type")
                }
                guard let text = pair[1].text else {
                    throw FieldError(message: "header contains value element with wrong type")
                }
                out.append(HeaderField(name: name, value: text))
            }
            return out
        default:
            throw self.wrongType(key)
        }
    }
}
