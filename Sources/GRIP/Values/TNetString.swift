/// A tnetstring value (`<length>:<payload><type>`), the encoding of Pushpin's ZeroMQ publish items, command
/// socket and stats (grip-spec §4.3). Strings are bytes; dictionaries keep their order.
package indirect enum TNetString: Sendable, Hashable {
    /// `,`: a byte string.
    case bytes([UInt8])
    /// `#`: an integer.
    case int(Int)
    /// `^`: a float.
    case float(Double)
    /// `!`: `true` or `false`.
    case bool(Bool)
    /// `~`: null (empty payload).
    case null
    /// `]`: a list.
    case list([TNetString])
    /// `}`: a dictionary of byte-string keys, in order.
    case dict([Member])

    /// One dictionary entry.
    package struct Member: Sendable, Hashable {
        /// The key.
        package var key: [UInt8]
        /// The value.
        package var value: TNetString

        /// Creates an entry.
        package init(key: [UInt8], value: TNetString) {
            self.key = key
            self.value = value
        }

        /// Creates an entry with a UTF-8 key.
        package init(_ key: String, _ value: TNetString) {
            self.key = Array(key.utf8)
            self.value = value
        }
    }

    /// A byte string holding `text` as UTF-8.
    package static func string(_ text: String) -> TNetString {
        .bytes(Array(text.utf8))
    }

    /// The value of the first member with the UTF-8 key `key`, for dictionaries.
    package subscript(key: String) -> TNetString? {
        guard case .dict(let members) = self else {
            return nil
        }
        let bytes = Array(key.utf8)
        return members.first { $0.key == bytes }?.value
    }

    /// The encoding.
    package func encoded() -> [UInt8] {
        var out: [UInt8] = []
        self.encode(into: &out)
        return out
    }

    /// Appends the encoding to `out`.
    package func encode(into out: inout [UInt8]) {
        let payload: [UInt8]
        let type: UInt8
        switch self {
        case .bytes(let bytes):
            (payload, type) = (bytes, UInt8(ascii: ","))
        case .int(let number):
            (payload, type) = (Array(String(number).utf8), UInt8(ascii: "#"))
        case .float(let number):
            (payload, type) = (Array("\(number)".utf8), UInt8(ascii: "^"))
        case .bool(let flag):
            (payload, type) = (Array((flag ? "true" : "false").utf8), UInt8(ascii: "!"))
        case .null:
            (payload, type) = ([], UInt8(ascii: "~"))
        case .list(let elements):
            var inner: [UInt8] = []
            for element in elements {
                element.encode(into: &inner)
            }
            (payload, type) = (inner, UInt8(ascii: "]"))
        case .dict(let members):
            var inner: [UInt8] = []
            for member in members {
                TNetString.bytes(member.key).encode(into: &inner)
                member.value.encode(into: &inner)
            }
            (payload, type) = (inner, UInt8(ascii: "}"))
        }
        out += Array(String(payload.count).utf8)
        out.append(UInt8(ascii: ":"))
        out += payload
        out.append(type)
    }

    /// The deepest nesting ``decode(_:)`` accepts.
    package static let maximumDepth = 64

    /// Decodes exactly one value that spans all of `bytes`.
    ///
    /// - Throws: ``TNetStringError`` for malformed input or trailing bytes.
    package static func decode(_ bytes: [UInt8]) throws(TNetStringError) -> TNetString {
        var position = 0
        let value = try Self.decode(bytes, at: &position, end: bytes.count, depth: 0)
        guard position == bytes.count else {
            throw TNetStringError(.trailingBytes, "\(bytes.count - position) bytes after the value", offset: position)
        }
        return value
    }

    private static func decode(
        _ bytes: [UInt8],
        at position: inout Int,
        end: Int,
        depth: Int
    ) throws(TNetStringError) -> TNetString {
        guard depth < Self.maximumDepth else {
            throw TNetStringError(.tooDeep, "nested deeper than \(Self.maximumDepth)", offset: position)
        }
        let start = position
        var length = 0
        var digits = 0
        while position < end, let digit = Self.digit(bytes[position]) {
            digits += 1
            guard digits <= 9 else {
                throw TNetStringError(.invalidLength, "length has more than 9 digits", offset: start)
            }
            length = length * 10 + digit
            position += 1
        }
        guard digits > 0 else {
            throw TNetStringError(.invalidLength, "expected a length", offset: start)
        }
        guard digits == 1 || bytes[start] != UInt8(ascii: "0") else {
            throw TNetStringError(.invalidLength, "length has a leading zero", offset: start)
        }
        guard position < end, bytes[position] == UInt8(ascii: ":") else {
            throw TNetStringError(.invalidLength, "expected ':' after the length", offset: position)
        }
        position += 1
        guard length < end - position else {
            throw TNetStringError(.truncated, "payload of \(length) bytes and its type do not fit", offset: start)
        }
        let payloadStart = position
        let payloadEnd = position + length
        let payload = bytes[payloadStart..<payloadEnd]
        let type = bytes[payloadEnd]
        position = payloadEnd + 1
        switch type {
        case UInt8(ascii: ","):
            return .bytes(Array(payload))
        case UInt8(ascii: "#"):
            guard let number = Int(String(decoding: payload, as: UTF8.self)), !payload.contains(UInt8(ascii: "+"))
            else {
                throw TNetStringError(.invalidPayload, "invalid integer", offset: payloadStart)
            }
            return .int(number)
        case UInt8(ascii: "^"):
            guard let number = Double(String(decoding: payload, as: UTF8.self)), number.isFinite else {
                throw TNetStringError(.invalidPayload, "invalid float", offset: payloadStart)
            }
            return .float(number)
        case UInt8(ascii: "!"):
            switch String(decoding: payload, as: UTF8.self) {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw TNetStringError(.invalidPayload, "invalid boolean", offset: payloadStart)
            }
        case UInt8(ascii: "~"):
            guard payload.isEmpty else {
                throw TNetStringError(.invalidPayload, "null with a payload", offset: payloadStart)
            }
            return .null
        case UInt8(ascii: "]"):
            var elements: [TNetString] = []
            var inner = payloadStart
            while inner < payloadEnd {
                elements.append(try Self.decode(bytes, at: &inner, end: payloadEnd, depth: depth + 1))
            }
            return .list(elements)
        case UInt8(ascii: "}"):
            var members: [Member] = []
            var inner = payloadStart
            while inner < payloadEnd {
                let keyOffset = inner
                guard case .bytes(let key) = try Self.decode(bytes, at: &inner, end: payloadEnd, depth: depth + 1)
                else {
                    throw TNetStringError(.invalidPayload, "dictionary key is not a byte string", offset: keyOffset)
                }
                guard inner < payloadEnd else {
                    throw TNetStringError(.invalidPayload, "dictionary key without a value", offset: keyOffset)
                }
                members.append(
                    Member(key: key, value: try Self.decode(bytes, at: &inner, end: payloadEnd, depth: depth + 1))
                )
            }
            return .dict(members)
        default:
            throw TNetStringError(.invalidType, "unknown type byte \(type)", offset: payloadEnd)
        }
    }

    private static func digit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }
}

/// Why bytes are not a tnetstring.
package struct TNetStringError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is.
    package enum Code: String, Sendable, Hashable {
        /// The length prefix is missing, too long, has a leading zero or lacks its `:`.
        case invalidLength
        /// The input ends before the payload and type byte.
        case truncated
        /// The type byte is not one of `,#^!~]}`.
        case invalidType
        /// The payload does not fit its type (bad integer, float, boolean, non-empty null, bad dictionary).
        case invalidPayload
        /// Bytes follow the value.
        case trailingBytes
        /// Nested deeper than ``TNetString/maximumDepth``.
        case tooDeep
    }

    /// What kind of problem this is.
    package var code: Code
    /// What is wrong.
    package var message: String
    /// The byte offset where the problem was found.
    package var offset: Int

    /// Creates an error.
    package init(_ code: Code, _ message: String, offset: Int) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    /// `invalid tnetstring at byte <offset>: <message>`.
    package var description: String {
        "invalid tnetstring at byte \(self.offset): \(self.message)"
    }
}
