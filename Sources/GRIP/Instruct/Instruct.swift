/// The GRIP instructions of a backend response (grip-spec §3): whether and how to hold the client request,
/// on which channels, with which timeout, keep-alive and next link, and the response to send.
///
/// Build one with ``parse(status:reason:headers:body:)``, which reads the header form and, for
/// `Content-Type: application/grip-instruct`, the JSON form on top of it.
package struct Instruct: Sendable, Hashable, Codable {
    /// How the client request is held.
    package enum HoldMode: String, Sendable, Hashable, Codable {
        /// No hold: answer with ``Instruct/response`` at once (or stream it, then follow ``Instruct/nextLink``).
        case none
        /// Long-poll: send nothing until a publish or the timeout (then ``Instruct/response``).
        case response
        /// Streaming: send ``Instruct/response``'s head and body now, then append published content.
        case stream
    }

    /// A channel the hold subscribes to (before the route prefix is applied).
    package struct Channel: Sendable, Hashable, Codable {
        /// The channel name.
        package var name: String
        /// `prev-id`: the id of the last item the backend already included (grip-spec §5.2).
        package var prevID: String?
        /// `filter=` names, in order (grip-spec §3.7).
        package var filters: [String]

        /// Creates a channel.
        package init(name: String, prevID: String? = nil, filters: [String] = []) {
            self.name = name
            self.prevID = prevID
            self.filters = filters
        }
    }

    /// What a stream hold sends while idle (`Grip-Keep-Alive`, JSON `hold.keep-alive`).
    package struct KeepAlive: Sendable, Hashable, Codable {
        /// When the data is sent.
        package enum Mode: String, Sendable, Hashable, Codable {
            /// After `timeout` seconds without any write (the timer restarts on every write).
            case idle
            /// Every `timeout` seconds regardless of traffic.
            case interval
        }

        /// The bytes to send, already decoded from the header's `format`.
        package var data: [UInt8]
        /// Seconds (at least ``Instruct/minimumKeepAliveTimeout``).
        package var timeout: Int
        /// When to send.
        package var mode: Mode

        /// Creates a keep-alive.
        package init(data: [UInt8], timeout: Int = Instruct.defaultKeepAliveTimeout, mode: Mode = .idle) {
            self.data = data
            self.timeout = timeout
            self.mode = mode
        }
    }

    /// A `Grip-Link` target.
    package struct Link: Sendable, Hashable, Codable {
        /// The URI between the angle brackets, possibly relative (resolve it against the request URI).
        package var uri: String
        /// Seconds after which the link is fetched when no channel delivered (next links; default 120).
        package var timeout: Int

        /// Creates a link.
        package init(uri: String, timeout: Int = Instruct.defaultNextLinkTimeout) {
            self.uri = uri
            self.timeout = timeout
        }
    }

    /// `Grip-Status: <code>[ <reason>]`.
    package struct Status: Sendable, Hashable, Codable {
        /// The status code.
        package var code: Int
        /// The reason phrase, nil when the header had none.
        package var reason: String?

        /// Creates a status.
        package init(code: Int, reason: String? = nil) {
            self.code = code
            self.reason = reason
        }
    }

    /// The response the client sees: at once without a hold, as the head and first body of a stream hold,
    /// or at the timeout of a response hold.
    package struct Response: Sendable, Hashable, Codable {
        /// The status code (the backend's, or `Grip-Status`/JSON `response.code`).
        package var code: Int
        /// The reason phrase (never empty: the standard phrase when none was given).
        package var reason: String
        /// The headers, without `Grip-*`, hop-by-hop headers, `Content-Length` and `Content-Encoding`.
        package var headers: [HeaderField]
        /// The body.
        package var body: [UInt8]

        /// Creates a response.
        package init(code: Int, reason: String, headers: [HeaderField], body: [UInt8]) {
            self.code = code
            self.reason = reason
            self.headers = headers
            self.body = body
        }
    }

    /// Response hold timeout when none is given (seconds).
    package static let defaultTimeout = 55
    /// Shorter response hold timeouts are raised to this (seconds).
    package static let minimumTimeout = 5
    /// Keep-alive timeout when none is given (seconds).
    package static let defaultKeepAliveTimeout = 55
    /// Shorter keep-alive timeouts are raised to this (seconds).
    package static let minimumKeepAliveTimeout = 1
    /// Next link timeout when none is given (seconds).
    package static let defaultNextLinkTimeout = 120
    /// The largest instruct body Pushpin accepts for a response hold (bytes, grip-spec §8.5).
    package static let maximumResponseHoldBodySize = 100_000
    /// The media type of the JSON form.
    package static let instructMediaType = "application/grip-instruct"

    /// How to hold.
    package var holdMode: HoldMode
    /// The channels, in order (`Grip-Channel` headers, or JSON `hold.channels`).
    package var channels: [Channel]
    /// Response hold timeout in seconds, default 55, at least 5 (ignored by stream holds).
    package var timeout: Int
    /// Stream hold keep-alive, if any.
    package var keepAlive: KeepAlive?
    /// `Grip-Link: <...>; rel=next`.
    package var nextLink: Link?
    /// `Grip-Link: <...>; rel=gone` (Pushpin 1.41): `POST` here, best effort, when the client goes away.
    package var goneLink: String?
    /// `Grip-Status` as given (already applied to ``response``).
    package var status: Status?
    /// Subscription meta from `Grip-Set-Meta` or JSON `hold.meta` (grip-spec §3.7).
    package var meta: [String: String]
    /// `Grip-Expose-Headers`: when not empty, only these backend headers were kept in ``response``.
    package var exposeHeaders: [String]
    /// What to send to the client (see ``Response``).
    package var response: Response

    /// Creates instructions; the defaults are those of a response without any GRIP header.
    package init(
        holdMode: HoldMode = .none,
        channels: [Channel] = [],
        timeout: Int = Instruct.defaultTimeout,
        keepAlive: KeepAlive? = nil,
        nextLink: Link? = nil,
        goneLink: String? = nil,
        status: Status? = nil,
        meta: [String: String] = [:],
        exposeHeaders: [String] = [],
        response: Response
    ) {
        self.holdMode = holdMode
        self.channels = channels
        self.timeout = timeout
        self.keepAlive = keepAlive
        self.nextLink = nextLink
        self.goneLink = goneLink
        self.status = status
        self.meta = meta
        self.exposeHeaders = exposeHeaders
        self.response = response
    }

    /// Parses a GRIP response: the header form always, then the JSON form on top when the media type is
    /// `application/grip-instruct` (grip-spec §3.3).
    ///
    /// - Parameters:
    ///   - status: the backend's status code.
    ///   - reason: the backend's reason phrase (empty for the standard one).
    ///   - headers: the backend's headers in order.
    ///   - body: the backend's body.
    /// - Throws: ``InstructError`` with Pushpin's message; the proxy answers 502.
    package static func parse(
        status: Int,
        reason: String,
        headers: [(String, String)],
        body: [UInt8]
    ) throws(InstructError) -> Instruct {
        var instruct = try Instruct(responseStatus: status, reason: reason, headers: headers, body: body)
        if Self.isInstructContentType(headers) {
            guard status == 200 else {
                throw InstructError(
                    .instructStatusNot200,
                    "response code for application/grip-instruct content must be 200"
                )
            }
            try instruct.applyJSONInstruct(body)
        }
        return instruct
    }

    /// Whether a backend response is a GRIP response (grip-spec §3.1): it has a `Grip-*` header, even an
    /// unknown one, or the `application/grip-instruct` media type.
    package static func isGripResponse(_ headers: [(String, String)]) -> Bool {
        headers.contains { HeaderField($0).isGrip } || Self.isInstructContentType(headers)
    }

    /// Whether the first `Content-Type` has the media type `application/grip-instruct` (any case, any
    /// parameters).
    package static func isInstructContentType(_ headers: [(String, String)]) -> Bool {
        guard let contentType = headers.first(where: { HeaderField($0).hasName("content-type") })?.1 else {
            return false
        }
        let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
        return String(mediaType).trimmingSpaces.equalsIgnoringASCIICase(Self.instructMediaType)
    }
}
