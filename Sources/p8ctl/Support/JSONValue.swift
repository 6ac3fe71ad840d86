/// A JSON value with ordered object keys, written by hand so that key order is stable and stored content that
/// is already JSON can be embedded as it is.
indirect enum JSONValue {
    case null
    case bool(Bool)
    case number(Int64)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])
    /// JSON text known to be valid and on one line, written verbatim.
    case raw(String)

    static func int(_ value: Int) -> JSONValue { .number(Int64(value)) }

    static func int(_ value: Int64) -> JSONValue { .number(value) }

    static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }

    static func optional(_ value: Int64?) -> JSONValue { value.map { .number($0) } ?? .null }

    /// On one line (NDJSON).
    var compact: String {
        var text = ""
        self.write(to: &text, indent: nil)
        return text
    }

    /// Indented by two spaces, for a whole document.
    var pretty: String {
        var text = ""
        self.write(to: &text, indent: 0)
        return text
    }

    private func write(to text: inout String, indent: Int?) {
        switch self {
        case .null:
            text += "null"
        case .bool(let value):
            text += value ? "true" : "false"
        case .number(let value):
            text += String(value)
        case .string(let value):
            Self.writeString(value, to: &text)
        case .raw(let value):
            text += value
        case .array(let values):
            if values.isEmpty {
                text += "[]"
                return
            }
            text += "["
            for (index, value) in values.enumerated() {
                if index > 0 {
                    text += ","
                }
                Self.newline(&text, indent.map { $0 + 1 })
                value.write(to: &text, indent: indent.map { $0 + 1 })
            }
            Self.newline(&text, indent)
            text += "]"
        case .object(let members):
            if members.isEmpty {
                text += "{}"
                return
            }
            text += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 {
                    text += ","
                }
                Self.newline(&text, indent.map { $0 + 1 })
                Self.writeString(key, to: &text)
                text += indent == nil ? ":" : ": "
                value.write(to: &text, indent: indent.map { $0 + 1 })
            }
            Self.newline(&text, indent)
            text += "}"
        }
    }

    private static func newline(_ text: inout String, _ indent: Int?) {
        if let indent {
            text += "\n" + String(repeating: "  ", count: indent)
        }
    }

    private static func writeString(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"":
                text += "\\\""
            case "\\":
                text += "\\\\"
            case "\n":
                text += "\\n"
            case "\r":
                text += "\\r"
            case "\t":
                text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
