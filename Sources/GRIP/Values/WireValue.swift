/// A decoded JSON or tnetstring value as the GRIP field readers see it: tnetstring strings are bytes, JSON
/// strings are text (Pushpin's QVariant in the same role).
enum WireValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case list([WireValue])
    case map([String: WireValue])

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .array(let elements): self = .list(elements.map(WireValue.init))
        case .object(let members): self = .map(members.mapValues(WireValue.init))
        }
    }

    /// Text: a JSON string, or tnetstring bytes that are valid UTF-8.
    var text: String? {
        switch self {
        case .string(let text): return text
        case .bytes(let bytes): return String(validating: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// Content bytes: a JSON string as UTF-8, or tnetstring bytes as they are.
    var contentBytes: [UInt8]? {
        switch self {
        case .string(let text): return Array(text.utf8)
        case .bytes(let bytes): return bytes
        default: return nil
        }
    }

    /// An integer: an integral number (a JSON `5.0` counts, as in Pushpin).
    var integer: Int? {
        switch self {
        case .int(let number):
            return number
        case .double(let number):
            guard number.rounded() == number, let exact = Int(exactly: number) else {
                return nil
            }
            return exact
        default:
            return nil
        }
    }

    /// The JSON equivalent (tnetstring bytes become strings, lossily if they are not UTF-8).
    var json: JSONValue {
        switch self {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .int(let number): return .int(number)
        case .double(let number): return .double(number)
        case .string(let text): return .string(text)
        case .bytes(let bytes): return .string(String(decoding: bytes, as: UTF8.self))
        case .list(let elements): return .array(elements.map(\.json))
        case .map(let members): return .object(members.mapValues(\.json))
        }
    }
}

extension WireValue {
    /// The tnetstring as a field reader sees it (byte strings stay bytes; keys are read as UTF-8).
    init(_ tnet: TNetString) {
        switch tnet {
        case .bytes(let bytes): self = .bytes(bytes)
        case .int(let number): self = .int(number)
        case .float(let number): self = .double(number)
        case .bool(let flag): self = .bool(flag)
        case .null: self = .null
        case .list(let elements): self = .list(elements.map(WireValue.init))
        case .dict(let members):
            var map: [String: WireValue] = [:]
            for member in members where map[String(decoding: member.key, as: UTF8.self)] == nil {
                map[String(decoding: member.key, as: UTF8.self)] = WireValue(member.value)
            }
            self = .map(map)
        }
    }
}
