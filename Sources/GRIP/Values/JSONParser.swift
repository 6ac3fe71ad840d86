/// A strict JSON (RFC 8259) parser from bytes straight to ``JSONValue``: publish bodies are parsed on every
/// publish, and Foundation's `JSONDecoder` through `Decodable` costs several times more (it tries each type in
/// turn and tracks coding paths).
///
/// Rejects what RFC 8259 rejects: trailing commas, single quotes, comments, leading zeros, control characters in
/// strings, lone surrogates, trailing bytes after the value; and numbers too large for a `Double`. Nesting is
/// limited to ``maxDepth``.
struct JSONParser {
    /// The deepest nesting accepted (a bound on recursion for hostile input).
    static let maxDepth = 512

    private let bytes: [UInt8]
    private var index = 0

    private struct Invalid: Error {}

    private init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The value of a JSON text, or nil when it is not valid JSON.
    static func parse(_ bytes: [UInt8]) -> JSONValue? {
        var parser = JSONParser(bytes)
        do {
            parser.skipWhitespace()
            let value = try parser.value(depth: 0)
            parser.skipWhitespace()
            return parser.index == bytes.count ? value : nil
        } catch {
            return nil
        }
    }

    private var current: UInt8? {
        self.index < self.bytes.count ? self.bytes[self.index] : nil
    }

    private mutating func skipWhitespace() {
        while let byte = self.current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            self.index += 1
        }
    }

    private mutating func expect(_ literal: StaticString) throws(Invalid) {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw Invalid() }
        let matches = literal.withUTF8Buffer { expected in
            expected.indices.allSatisfy { self.bytes[self.index + $0] == expected[$0] }
        }
        guard matches else { throw Invalid() }
        self.index += count
    }

    private mutating func value(depth: Int) throws(Invalid) -> JSONValue {
        guard depth <= Self.maxDepth, let byte = self.current else { throw Invalid() }
        switch byte {
        case UInt8(ascii: "{"):
            return try self.object(depth: depth)
        case UInt8(ascii: "["):
            return try self.array(depth: depth)
        case UInt8(ascii: "\""):
            return .string(try self.string())
        case UInt8(ascii: "t"):
            try self.expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.expect("null")
            return .null
        default:
            return try self.number()
        }
    }

    private mutating func object(depth: Int) throws(Invalid) -> JSONValue {
        self.index += 1
        var members: [String: JSONValue] = [:]
        self.skipWhitespace()
        if self.current == UInt8(ascii: "}") {
            self.index += 1
            return .object(members)
        }
        while true {
            self.skipWhitespace()
            guard self.current == UInt8(ascii: "\"") else { throw Invalid() }
            let key = try self.string()
            self.skipWhitespace()
            guard self.current == UInt8(ascii: ":") else { throw Invalid() }
            self.index += 1
            self.skipWhitespace()
            members[key] = try self.value(depth: depth + 1)
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return .object(members)
            default:
                throw Invalid()
            }
        }
    }

    private mutating func array(depth: Int) throws(Invalid) -> JSONValue {
        self.index += 1
        var elements: [JSONValue] = []
        self.skipWhitespace()
        if self.current == UInt8(ascii: "]") {
            self.index += 1
            return .array(elements)
        }
        while true {
            self.skipWhitespace()
            elements.append(try self.value(depth: depth + 1))
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return .array(elements)
            default:
                throw Invalid()
            }
        }
    }

    /// A string from its opening quote; runs without escapes are copied whole.
    private mutating func string() throws(Invalid) -> String {
        self.index += 1
        var utf8: [UInt8] = []
        var runStart = self.index
        while true {
            guard let byte = self.current else { throw Invalid() }
            switch byte {
            case UInt8(ascii: "\""):
                utf8.append(contentsOf: self.bytes[runStart..<self.index])
                self.index += 1
                guard let text = String(validating: utf8, as: UTF8.self) else { throw Invalid() }
                return text
            case UInt8(ascii: "\\"):
                utf8.append(contentsOf: self.bytes[runStart..<self.index])
                self.index += 1
                try self.escape(into: &utf8)
                runStart = self.index
            case 0..<0x20:
                throw Invalid()
            default:
                self.index += 1
            }
        }
    }

    private mutating func escape(into utf8: inout [UInt8]) throws(Invalid) {
        guard let byte = self.current else { throw Invalid() }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
            utf8.append(byte)
        case UInt8(ascii: "b"):
            utf8.append(0x08)
        case UInt8(ascii: "f"):
            utf8.append(0x0C)
        case UInt8(ascii: "n"):
            utf8.append(0x0A)
        case UInt8(ascii: "r"):
            utf8.append(0x0D)
        case UInt8(ascii: "t"):
            utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try self.hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard self.current == UInt8(ascii: "\\") else { throw Invalid() }
                self.index += 1
                guard self.current == UInt8(ascii: "u") else { throw Invalid() }
                self.index += 1
                let low = try self.hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw Invalid() }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw Invalid()
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw Invalid() }
            utf8.append(contentsOf: String(Character(unicode)).utf8)
        default:
            throw Invalid()
        }
    }

    private mutating func hex4() throws(Invalid) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw Invalid() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw Invalid()
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`: an `int` when it has no fraction or exponent and
    /// fits, else a `double`.
    private mutating func number() throws(Invalid) -> JSONValue {
        let start = self.index
        if self.current == UInt8(ascii: "-") {
            self.index += 1
        }
        guard let first = self.current, Self.isDigit(first) else { throw Invalid() }
        self.index += 1
        if first == UInt8(ascii: "0"), let next = self.current, Self.isDigit(next) {
            throw Invalid()
        }
        self.skipDigits()
        var isInteger = true
        if self.current == UInt8(ascii: ".") {
            isInteger = false
            self.index += 1
            guard let digit = self.current, Self.isDigit(digit) else { throw Invalid() }
            self.skipDigits()
        }
        if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
            isInteger = false
            self.index += 1
            if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") {
                self.index += 1
            }
            guard let digit = self.current, Self.isDigit(digit) else { throw Invalid() }
            self.skipDigits()
        }
        let text = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        if isInteger, let integer = Int(text) {
            return .int(integer)
        }
        guard let double = Double(text), double.isFinite else { throw Invalid() }
        return .double(double)
    }

    private mutating func skipDigits() {
        while let byte = self.current, Self.isDigit(byte) {
            self.index += 1
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
