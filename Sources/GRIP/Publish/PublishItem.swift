/// One published item (grip-spec §4.1): a channel, optional ids, item meta and up to three formats, one per
/// kind of subscriber (response holds, stream holds, WebSockets).
package struct PublishItem: Sendable, Hashable {
    /// The channel (on a ZeroMQ SUB socket it comes from the topic frame instead).
    package var channel: String
    /// `id`: used for sequencing, de-duplication and prev-id checks (grip-spec §5).
    package var id: String?
    /// `prev-id`: the id of the previous item on the channel.
    package var prevID: String?
    /// The formats.
    package var formats: PublishFormats
    /// `meta`: item meta for filters (`sender`, `skip_users`, `require_sub`, ...).
    package var meta: [String: String]
    /// `size`: an optional size hint for statistics.
    package var size: Int?
    /// `no-seq`: bypass the reordering buffer (grip-spec §5.1).
    package var noSeq: Bool

    /// Creates an item.
    package init(
        channel: String,
        id: String? = nil,
        prevID: String? = nil,
        formats: PublishFormats,
        meta: [String: String] = [:],
        size: Int? = nil,
        noSeq: Bool = false
    ) {
        self.channel = channel
        self.id = id
        self.prevID = prevID
        self.formats = formats
        self.meta = meta
        self.size = size
        self.noSeq = noSeq
    }
}

/// The formats of an item; a subscriber whose format is missing gets nothing. Unknown format names are
/// ignored when parsing.
package struct PublishFormats: Sendable, Hashable {
    /// For response holds.
    package var httpResponse: HTTPResponseFormat?
    /// For stream holds.
    package var httpStream: HTTPStreamFormat?
    /// For WebSockets.
    package var wsMessage: WSMessageFormat?

    /// Creates formats.
    package init(
        httpResponse: HTTPResponseFormat? = nil,
        httpStream: HTTPStreamFormat? = nil,
        wsMessage: WSMessageFormat? = nil
    ) {
        self.httpResponse = httpResponse
        self.httpStream = httpStream
        self.wsMessage = wsMessage
    }

    /// Whether no known format is present (an item with only unknown formats is valid but reaches nobody).
    package var isEmpty: Bool {
        self.httpResponse == nil && self.httpStream == nil && self.wsMessage == nil
    }
}

/// What a published item does to a subscriber.
package enum PublishAction: String, Sendable, Hashable {
    /// Deliver the content (the default).
    case send
    /// No content: "something changed, ask the backend" (grip-spec §5.4).
    case hint
    /// End the stream / close the WebSocket (parsed but ignored for response holds).
    case close
    /// `ws-message` only (Pushpin 1.38+): make a WebSocket-over-HTTP request now.
    case refresh
}

/// The `http-response` format: the response a response hold answers with.
package struct HTTPResponseFormat: Sendable, Hashable {
    /// The body source.
    package enum Body: Sendable, Hashable {
        /// `body` (UTF-8) or `body-bin` (base64 in JSON, raw bytes in tnetstring).
        case bytes([UInt8])
        /// `body-patch`: JSON Patch (RFC 6902) operations applied to the hold's original body.
        case patch([JSONValue])
    }

    /// `send`, `hint` or `close`.
    package var action: PublishAction
    /// `code` (0-999); nil means 200.
    package var code: Int?
    /// `reason`; nil means the standard phrase for the code.
    package var reason: String?
    /// `headers` in order (an object's keys come sorted); checked to be safe to send. `Grip-*` headers are
    /// kept here (delivery strips them and honours `Grip-Expose-Headers`).
    package var headers: [HeaderField]
    /// The body (empty bytes for `hint`/`close`).
    package var body: Body
    /// `content-filters`, when given.
    package var contentFilters: [String]?

    /// Creates an `http-response` format.
    package init(
        action: PublishAction = .send,
        code: Int? = nil,
        reason: String? = nil,
        headers: [HeaderField] = [],
        body: Body = .bytes([]),
        contentFilters: [String]? = nil
    ) {
        self.action = action
        self.code = code
        self.reason = reason
        self.headers = headers
        self.body = body
        self.contentFilters = contentFilters
    }

    /// The status code to send: ``code`` or 200.
    package var effectiveCode: Int {
        self.code ?? 200
    }

    /// The reason phrase to send: ``reason`` or the standard phrase for ``effectiveCode``.
    package var effectiveReason: String {
        self.reason ?? StatusReason.phrase(for: self.effectiveCode)
    }
}

/// The `http-stream` format: content appended to stream holds.
package struct HTTPStreamFormat: Sendable, Hashable {
    /// `send`, `hint` or `close`.
    package var action: PublishAction
    /// `content` (UTF-8) or `content-bin`; empty unless the action is `send`.
    package var content: [UInt8]
    /// `content-filters`, when given.
    package var contentFilters: [String]?

    /// Creates an `http-stream` format.
    package init(action: PublishAction = .send, content: [UInt8] = [], contentFilters: [String]? = nil) {
        self.action = action
        self.content = content
        self.contentFilters = contentFilters
    }
}

/// The `ws-message` format: a message (or close) sent to WebSockets.
package struct WSMessageFormat: Sendable, Hashable {
    /// The kind of frame.
    package enum MessageType: String, Sendable, Hashable, Codable {
        /// A text message (default for `content`).
        case text
        /// A binary message (default for `content-bin`).
        case binary
        /// A ping.
        case ping
        /// A pong.
        case pong
    }

    /// `send`, `close`, `hint` (ignored for WebSockets) or `refresh`.
    package var action: PublishAction
    /// The frame type for `send`.
    package var type: MessageType
    /// The payload for `send` (empty otherwise).
    package var content: [UInt8]
    /// `code` for `close` (0-65535), when given.
    package var closeCode: Int?
    /// `reason` for `close`, when given.
    package var closeReason: String?
    /// `content-filters`, when given.
    package var contentFilters: [String]?

    /// Creates a `ws-message` format.
    package init(
        action: PublishAction = .send,
        type: MessageType = .text,
        content: [UInt8] = [],
        closeCode: Int? = nil,
        closeReason: String? = nil,
        contentFilters: [String]? = nil
    ) {
        self.action = action
        self.type = type
        self.content = content
        self.closeCode = closeCode
        self.closeReason = closeReason
        self.contentFilters = contentFilters
    }
}
