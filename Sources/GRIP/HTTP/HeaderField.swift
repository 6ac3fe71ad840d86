/// One HTTP header line, name as written. Used for backend response headers, the response a hold sends and the
/// headers of a published `http-response`.
package struct HeaderField: Sendable, Hashable, Codable {
    /// The name as written (compare with ``hasName(_:)``, which ignores case).
    package var name: String
    /// The value.
    package var value: String

    /// Creates a header line.
    package init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Creates a header line from a `(name, value)` pair.
    package init(_ pair: (String, String)) {
        self.name = pair.0
        self.value = pair.1
    }

    /// Whether this header is named `name`, ignoring ASCII case.
    package func hasName(_ name: String) -> Bool {
        self.name.equalsIgnoringASCIICase(name)
    }

    /// Whether the name starts with `Grip-` in any case (grip-spec §3.1).
    package var isGrip: Bool {
        var utf8 = self.name.utf8.makeIterator()
        for expected in "grip-".utf8 {
            guard let byte = utf8.next(), byte | 0x20 == expected else {
                return false
            }
        }
        return true
    }

    /// The lowercased names of headers that describe one connection rather than the message (RFC 9110 §7.6.1).
    package static let hopByHopNames: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Whether `name` is a valid header name: a non-empty RFC 9110 token.
    package static func isValidName(_ name: String) -> Bool {
        !name.utf8.isEmpty && name.utf8.allSatisfy(Self.isTokenByte)
    }

    /// Whether `text` can be sent in a header value or reason phrase: no CR, LF or NUL (nor other control
    /// characters except horizontal tab).
    package static func isValidValue(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    /// `text` safe to quote in an error message or log line: control characters and DEL as `\xHH`.
    package static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\x" + (hex.count == 1 ? "0" : "") + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension String {
    /// ASCII case-insensitive equality (header names, parameter names, media types).
    func equalsIgnoringASCIICase(_ other: String) -> Bool {
        self.utf8.count == other.utf8.count
            && zip(self.utf8, other.utf8).allSatisfy { Self.lowerASCII($0) == Self.lowerASCII($1) }
    }

    /// The string with ASCII letters lowercased.
    var lowercasedASCII: String {
        String(decoding: self.utf8.map(Self.lowerASCII), as: UTF8.self)
    }

    /// The string without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let bytes = Array(self.utf8)
        guard let first = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
            let last = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })
        else {
            return ""
        }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    private static func lowerASCII(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}
