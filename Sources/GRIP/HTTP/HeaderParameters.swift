/// One element of a GRIP header in the HTTP parameter style `value; name=val; name2="quoted"` (grip-spec §3.2),
/// parsed as Pushpin does: the value runs to the first `;` (quotes are not special in it), parameter values may
/// be quoted with `\` escapes, names are matched ignoring case.
package struct HeaderParameters: Sendable, Hashable {
    /// A `name` or `name=value` parameter.
    package struct Parameter: Sendable, Hashable {
        /// The name, trimmed.
        package var name: String
        /// The value, unquoted (nil when the parameter has no `=`).
        package var value: String?

        /// Creates a parameter.
        package init(name: String, value: String?) {
            self.name = name
            self.value = value
        }
    }

    /// The leading element: for `Grip-Channel: a; prev-id=1` the name `a` with a nil value; when parsed with
    /// `firstIsPair` (`Grip-Set-Meta: user=alice`), the pair.
    package var first: Parameter
    /// The parameters after the first `;`, in order.
    package var parameters: [Parameter]

    /// Creates parsed parameters.
    package init(first: Parameter, parameters: [Parameter]) {
        self.first = first
        self.parameters = parameters
    }

    /// Parses one element (already split at commas).
    ///
    /// - Parameters:
    ///   - text: the element.
    ///   - firstIsPair: parse the leading element as `name=value` too (Pushpin's `ParseAllParameters`).
    /// - Returns: nil when a quoted value is unterminated or ends in a lone `\`.
    package init?(parsing text: String, firstIsPair: Bool = false) {
        let bytes = Array(text.utf8)
        var position = 0
        var parsed: [Parameter] = []
        if !firstIsPair {
            let end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            parsed.append(Parameter(name: Self.trimmed(bytes[0..<end]), value: nil))
            position = end + 1
        }
        while position < bytes.count {
            guard let parameter = Self.parameter(bytes, from: &position) else {
                return nil
            }
            parsed.append(parameter)
        }
        guard let first = parsed.first else {
            return nil
        }
        self.first = first
        self.parameters = Array(parsed.dropFirst())
    }

    /// The value of the first parameter called `name` (ignoring case): nil when absent, `""` when present
    /// without a value.
    package func value(of name: String) -> String? {
        self.parameters.first { $0.name.equalsIgnoringASCIICase(name) }.map { $0.value ?? "" }
    }

    /// The values of every parameter called `name` (ignoring case), in order.
    package func values(of name: String) -> [String] {
        self.parameters.filter { $0.name.equalsIgnoringASCIICase(name) }.map { $0.value ?? "" }
    }

    /// Splits a header value at commas outside double quotes and trims each part; empty parts are kept out.
    ///
    /// - Returns: nil when a quote is unterminated.
    package static func split(_ headerValue: String) -> [String]? {
        var parts: [String] = []
        var current: [UInt8] = []
        var inQuote = false
        var escaped = false
        for byte in headerValue.utf8 {
            if inQuote {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inQuote = false
                }
                current.append(byte)
            } else if byte == UInt8(ascii: ",") {
                parts.append(Self.trimmed(current[...]))
                current.removeAll(keepingCapacity: true)
            } else {
                if byte == UInt8(ascii: "\"") {
                    inQuote = true
                }
                current.append(byte)
            }
        }
        guard !inQuote else {
            return nil
        }
        parts.append(Self.trimmed(current[...]))
        return parts.filter { !$0.isEmpty }
    }

    /// Reads `name[=value]` up to and including the next `;`.
    private static func parameter(_ bytes: [UInt8], from position: inout Int) -> Parameter? {
        let start = position
        let stop = bytes[start...].firstIndex { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ";") } ?? bytes.count
        let name = Self.trimmed(bytes[start..<stop])
        guard stop < bytes.count, bytes[stop] == UInt8(ascii: "=") else {
            position = stop + 1
            return Parameter(name: name, value: nil)
        }
        var index = stop + 1
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 {
            index += 1
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            let end = bytes[index...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            position = end + 1
            return Parameter(name: name, value: Self.trimmed(bytes[stop + 1..<end]))
        }
        var value: [UInt8] = []
        index += 1
        while true {
            guard index < bytes.count else {
                return nil
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else {
                    return nil
                }
                value.append(bytes[index + 1])
                index += 2
            } else if byte == UInt8(ascii: "\"") {
                index += 1
                break
            } else {
                value.append(byte)
                index += 1
            }
        }
        let end = bytes[index...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
        position = end + 1
        return Parameter(name: name, value: String(decoding: value, as: UTF8.self))
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self).trimmingSpaces
    }
}
