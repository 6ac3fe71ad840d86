extension PublishItem {
    /// Parses one item from JSON text (the ZeroMQ `J` + JSON form).
    ///
    /// - Parameters:
    ///   - json: the JSON object.
    ///   - channel: the channel from a ZeroMQ SUB topic frame, which overrides the item's `channel`.
    /// - Throws: ``PublishError``.
    package static func parse(json: [UInt8], channel: String? = nil) throws(PublishError) -> PublishItem {
        guard let value = JSONValue.parse(json) else {
            throw PublishError(.invalidJSON, "item is not valid JSON")
        }
        return try Self.parse(value, channel: channel)
    }

    /// Parses one item from a parsed JSON value.
    ///
    /// - Parameters:
    ///   - value: the item object.
    ///   - channel: the channel from a ZeroMQ SUB topic frame, which overrides the item's `channel`.
    ///   - index: the item's index in `items`, for the error.
    /// - Throws: ``PublishError`` (code ``PublishError/Code/invalidItem`` or
    ///   ``PublishError/Code/forbiddenHeader``).
    package static func parse(
        _ value: JSONValue,
        channel: String? = nil,
        index: Int? = nil
    ) throws(PublishError) -> PublishItem {
        do {
            return try PublishItem(wire: WireValue(value), isJSON: true, channel: channel)
        } catch {
            throw PublishError(
                error.isForbiddenHeader ? .forbiddenHeader : .invalidItem,
                error.message,
                itemIndex: index
            )
        }
    }
}

/// The body of `POST /publish` (grip-spec §4.2): `{"items": [item, ...]}`.
package enum PublishRequest {
    /// Parses and validates every item; one bad item fails the whole request (nothing is published).
    ///
    /// - Parameter body: the request body.
    /// - Returns: the items in order (possibly none).
    /// - Throws: ``PublishError``; answer 400 with its ``PublishError/description``.
    package static func parse(body: [UInt8]) throws(PublishError) -> [PublishItem] {
        guard let value = JSONValue.parse(body) else {
            throw PublishError(.invalidJSON, "Body is not valid JSON.")
        }
        guard case .object(let members) = value else {
            throw PublishError(.notAnObject, "the body must be a JSON object with 'items'")
        }
        guard let items = members["items"] else {
            throw PublishError(.missingItems, "object does not contain 'items'")
        }
        guard case .array(let elements) = items else {
            throw PublishError(.invalidItems, "object contains 'items' with wrong type")
        }
        var out: [PublishItem] = []
        out.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            out.append(try PublishItem.parse(element, index: index))
        }
        return out
    }
}
