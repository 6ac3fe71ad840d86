/// Why a publish request or item is refused. The HTTP publish API answers `400` with ``description`` and a
/// newline; the ZeroMQ intake logs it and drops the item. One bad item rejects the whole request.
package struct PublishError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is.
    package enum Code: String, Sendable, Hashable {
        /// The body is not JSON (or a ZeroMQ frame is not a tnetstring).
        case invalidJSON
        /// The body is JSON but not an object.
        case notAnObject
        /// The object has no `items`.
        case missingItems
        /// `items` is not a list.
        case invalidItems
        /// An item is malformed (missing channel, no formats, a field of the wrong type...).
        case invalidItem
        /// An `http-response` header that would break HTTP (bad characters, hop-by-hop or `Content-Length`).
        case forbiddenHeader
    }

    /// What kind of problem this is.
    package var code: Code
    /// What is wrong, in Pushpin's words where it has some (e.g. `'http-stream' does not contain 'content' or
    /// 'content-bin'`).
    package var message: String
    /// The 0-based index of the offending item in `items`, when the error is about one item.
    package var itemIndex: Int?

    /// Creates an error.
    package init(_ code: Code, _ message: String, itemIndex: Int? = nil) {
        self.code = code
        self.message = message
        self.itemIndex = itemIndex
    }

    /// The 400 body without its newline: for a request body that is not JSON Pushpin's `Body is not valid
    /// JSON.`, otherwise `Invalid format: [items[<i>]: ]<message>` (Pushpin's text with the item index added).
    package var description: String {
        switch self.code {
        case .invalidJSON:
            return self.message
        default:
            let location = self.itemIndex.map { "items[\($0)]: " } ?? ""
            return "Invalid format: \(location)\(self.message)"
        }
    }
}
