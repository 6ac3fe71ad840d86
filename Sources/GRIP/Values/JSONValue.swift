import Foundation

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
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// Compact JSON with object keys sorted and strings escaped minimally (canonical bytes for storage).
    package func encoded() -> [UInt8] {
        var out = ""
        self.write(to: &out)
        return Array(out.utf8)
    }

    /// The string, if this is one.
    package var stringValue: String? {
        if case .string(let text) = self {
            return text
        }
        return nil
    }

    private func write(to out: inout String) {
        switch self {
        case .null:
            out += "null"
        case .bool(let flag):
            out += flag ? "true" : "false"
        case .int(let number):
            out += String(number)
        case .double(let number):
            out += number.isFinite ? "\(number)" : "null"
        case .string(let text):
            out += GripSignature.jsonString(text)
        case .array(let elements):
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 {
                    out += ","
                }
                element.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 {
                    out += ","
                }
                out += GripSignature.jsonString(key)
                out += ":"
                members[key]?.write(to: &out)
            }
            out += "}"
        }
    }
}

extension JSONValue: Decodable {
    /// Decodes any JSON value (booleans are never taken for numbers, nor integers for doubles).
    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Int.self) {
            self = .int(number)
        } else if let number = try? container.decode(Double.self) {
            self = .double(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let elements = try? container.decode([JSONValue].self) {
            self = .array(elements)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}
