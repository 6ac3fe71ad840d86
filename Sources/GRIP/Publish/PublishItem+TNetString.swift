extension PublishItem {
    /// Parses one item from a tnetstring (the ZeroMQ form, grip-spec §4.3): strings are bytes, so `content`
    /// and `body` carry raw bytes, and so do `content-bin`/`body-bin`.
    ///
    /// - Parameters:
    ///   - tnetstring: the encoded item.
    ///   - channel: the channel from a ZeroMQ SUB topic frame, which overrides the item's `channel`.
    /// - Throws: ``PublishError`` (``PublishError/Code/invalidJSON`` when the bytes are no tnetstring).
    package static func parse(tnetstring: [UInt8], channel: String? = nil) throws(PublishError) -> PublishItem {
        let value: TNetString
        do {
            value = try TNetString.decode(tnetstring)
        } catch {
            throw PublishError(.invalidJSON, error.description)
        }
        return try Self.parse(value, channel: channel)
    }

    /// Parses one item from a decoded tnetstring.
    package static func parse(_ value: TNetString, channel: String? = nil) throws(PublishError) -> PublishItem {
        do {
            return try PublishItem(wire: WireValue(value), isJSON: false, channel: channel)
        } catch {
            throw PublishError(error.isForbiddenHeader ? .forbiddenHeader : .invalidItem, error.message)
        }
    }

    /// Parses one ZeroMQ publish frame: `J` + JSON, `T` + tnetstring, or a bare tnetstring.
    ///
    /// - Parameters:
    ///   - message: the frame.
    ///   - channel: the topic frame of a SUB message, which overrides the item's `channel`.
    /// - Throws: ``PublishError``; the intake logs it and drops the frame.
    package static func parse(zmqMessage message: [UInt8], channel: String? = nil) throws(PublishError) -> PublishItem {
        switch message.first {
        case UInt8(ascii: "J"):
            return try Self.parse(json: Array(message.dropFirst()), channel: channel)
        case UInt8(ascii: "T"):
            return try Self.parse(tnetstring: Array(message.dropFirst()), channel: channel)
        default:
            return try Self.parse(tnetstring: message, channel: channel)
        }
    }
}
