/// A content filter failed (or a published format's `content-filters` did not match the subscription's): the
/// session ends with an error (grip-spec §3.7).
package struct ContentFilterError: Error, Hashable, CustomStringConvertible {
    /// Pushpin's wording.
    package var message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String {
        self.message
    }
}

/// What the content filters of a subscription see: the subscription's meta and, for every channel of the
/// session, the id it is at (the backend's `prev-id`, then the id of each item delivered on it).
package struct ContentFilterContext: Sendable, Hashable {
    /// Subscription meta (`Grip-Set-Meta`, JSON `hold.meta`).
    package var subscriptionMeta: [String: String]
    /// The session's channels by the backend's name (no route prefix), with their current ids; a channel whose
    /// position is unknown has none.
    package var channelIDs: [String: String?]

    package init(subscriptionMeta: [String: String], channelIDs: [String: String?]) {
        self.subscriptionMeta = subscriptionMeta
        self.channelIDs = channelIDs
    }
}

/// The filters of grip-spec §3.7 that change content, as Pushpin applies them: `build-id` (published content
/// and a stream's initial response) and `var-subst` (published content). The delivery filters (`skip-self`,
/// `skip-users`, `require-sub`) decide whether an item is delivered and leave content alone.
package enum ContentFilters {
    /// Where a filter acts on content.
    package enum Target: Sendable {
        /// Published content (`http-response` body, `http-stream` and `ws-message` content).
        case message
        /// The body of the backend's response that starts a stream hold.
        case response
    }

    /// Whether the filter named `name` acts on `target`.
    package static func acts(_ name: String, on target: Target) -> Bool {
        switch (name, target) {
        case ("build-id", _), ("var-subst", .message): true
        default: false
        }
    }

    /// The subscription's filters that act on published content, in order: what a format's `content-filters`
    /// must equal.
    package static func messageFilters(of filters: [String]) -> [String] {
        filters.filter { self.acts($0, on: .message) }
    }

    /// Checks a published format's `content-filters` (when it has them) against the subscription's.
    ///
    /// - Throws: ``ContentFilterError`` ("content filter mismatch: ...") when they differ.
    package static func checkMatch(subscription filters: [String], published: [String]?) throws(ContentFilterError) {
        guard let published else { return }
        let expected = self.messageFilters(of: filters)
        guard expected == published else {
            throw ContentFilterError(
                "content filter mismatch: subscription=\(expected.joined(separator: ",")) "
                    + "message=\(published.joined(separator: ","))"
            )
        }
    }

    /// Applies those of `filters` that act on `target` to `content`, in order.
    ///
    /// - Throws: ``ContentFilterError`` when one fails (the whole content is then not sent).
    package static func apply(
        _ filters: [String],
        to content: [UInt8],
        on target: Target,
        context: ContentFilterContext
    ) throws(ContentFilterError) -> [UInt8] {
        var content = content
        for filter in filters where self.acts(filter, on: target) {
            switch filter {
            case "build-id":
                content = try self.buildID(content, context: context)
            default:
                content = try FilterTemplate.render(content) { letter, argument throws(ContentFilterError) in
                    try FilterTemplate.variable(letter, argument, in: context.subscriptionMeta)
                }
            }
        }
        return content
    }

    /// `build-id`: `%I` becomes the id rendered from sub meta `id_format` (its `%(channel)s` the channel's current
    /// id), `%(text)I` becomes `text`; with `id_encoding=hex` either is hex-encoded.
    private static func buildID(
        _ content: [UInt8],
        context: ContentFilterContext
    ) throws(ContentFilterError) -> [UInt8] {
        guard let idFormat = context.subscriptionMeta["id_format"] else {
            throw ContentFilterError("no sub meta 'id_format'")
        }
        var defaultID: [UInt8]?
        if !context.channelIDs.isEmpty {
            let variables = context.channelIDs.compactMapValues { $0 }
            do {
                let template = Array(idFormat.utf8)
                defaultID = try FilterTemplate.render(template) { letter, argument throws(ContentFilterError) in
                    try FilterTemplate.variable(letter, argument, in: variables)
                }
            } catch {
                throw ContentFilterError("failed to render ID: \(error.message)")
            }
        }
        var hex = false
        if let encoding = context.subscriptionMeta["id_encoding"] {
            guard encoding == "hex" else {
                throw ContentFilterError("unsupported encoding: \(encoding)")
            }
            hex = true
        }
        return try FilterTemplate.render(content) { letter, argument throws(ContentFilterError) in
            guard letter == UInt8(ascii: "I") else {
                throw ContentFilterError("Unknown directive '\(String(decoding: [letter], as: UTF8.self))'")
            }
            guard let id = argument ?? defaultID else {
                throw ContentFilterError("No ID specified and no default ID in context")
            }
            return hex ? Self.hexEncoded(id) : id
        }
    }

    private static func hexEncoded(_ bytes: [UInt8]) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return out
    }
}
