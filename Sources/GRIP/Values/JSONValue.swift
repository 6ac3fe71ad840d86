/// A JSON document as a value: what GRIP's JSON inputs (instruct bodies, publish requests) are parsed into
/// before their fields are checked, and what `body-patch` operations are kept as.
///
/// Objects are unordered; ``encoded()`` writes keys sorted, so equal values encode to equal bytes.
package enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number without fraction or exponent that fits in `Int`.
    case int(Int)
    /// Any other number.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object (a repeated key keeps one of its values).
    case object([String: JSONValue])

    /// Parses a JSON text (any value at the top level).
    ///
    /// - Returns: nil when `bytes` is not valid JSON.
    package static func parse(_ bytes: [UInt8]) -> JSONValue? {
        JSONParser.parse(bytes)
    }

    /// Compact JSON with object keys sorted and strings escaped minimally (canonical bytes for storage).
    package func encoded() -> [UInt8] {
        var out: [UInt8] = []
        self.write(to: &out)
        return out
    }

    /// The string, if this is one.
    package var stringValue: String? {
        if case .string(let text) = self {
            return text
        }
        return nil
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null:
            out += "null".utf8
        case .bool(let flag):
            out += (flag ? "true" : "false").utf8
        case .int(let number):
            out += String(number).utf8
        case .double(let number):
            out += (number.isFinite ? "\(number)" : "null").utf8
        case .string(let text):
            Self.writeString(text, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 {
                    out.append(UInt8(ascii: ","))
                }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 {
                    out.append(UInt8(ascii: ","))
                }
                Self.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                members[key]?.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal, escaping only what must be (quote, backslash, control characters), as Qt's compact
    /// JSON writer does.
    static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        Self.writeEscaped(text.utf8, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// `bytes` escaped for the inside of a JSON string, byte by byte (so a UTF-8 sequence split across pieces
    /// stays intact).
    static func writeEscaped(_ bytes: some Sequence<UInt8>, to out: inout [UInt8]) {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case 0x0A: out += #"\n"#.utf8
            case 0x0D: out += #"\r"#.utf8
            case 0x09: out += #"\t"#.utf8
            case 0x08: out += #"\b"#.utf8
            case 0x0C: out += #"\f"#.utf8
            case 0..<0x20:
                let hex = String(byte, radix: 16)
                out += (#"\u"# + String(repeating: "0", count: 4 - hex.count) + hex).utf8
            default:
                out.append(byte)
            }
        }
    }
}
