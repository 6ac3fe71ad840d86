import GRIP
import NIOCore
import NIOHTTP1
import Publish

/// The decisions of one proxied exchange (``ProxyExchange``), apart from the sockets: what becomes of the client's
/// request body (sent, queued while connecting, kept to send again), what a backend response is (relayed, appended
/// to a stream, or GRIP instructions buffered whole), and what a backend failure or a timeout means at each point.
/// Each method takes an event and returns what the exchange must do.
struct ProxyExchangeStateMachine {
    /// What a backend request of the exchange is for.
    enum RequestKind {
        /// The client's request.
        case original
        /// The client's request again, because the client is behind on these channels (grip-spec §5.2).
        case retry([GripLast])
        /// A stream's next link (grip-spec §3.6): the response body is appended to the stream.
        /// (Indirect: a next link is large, and a held exchange keeps its kind.)
        indirect case nextLink(NextLink, [GripLast])

        var isNextLink: Bool {
            if case .nextLink = self { return true }
            return false
        }
    }

    enum Response: Equatable {
        case waitingForHead
        /// A plain response being relayed; `backendKeepAlive` says whether the backend connection may be reused.
        case relaying(backendKeepAlive: Bool)
        /// A next link's plain response, appended to the client's stream.
        case appendingToStream(backendKeepAlive: Bool)
        /// A GRIP response, buffered whole before it is acted on.
        case bufferingGrip(HTTPResponseHead, ByteBuffer)
        case complete
    }

    /// What to do with a part of the client's request body.
    enum BodyAction: Equatable {
        case none
        /// Write it to the backend connection.
        case forward(ByteBuffer)
        /// Queued until connected; `pauseClient` when too much is queued.
        case queued(pauseClient: Bool)
    }

    /// What to do with a part of the backend's response.
    enum ResponseAction: Equatable {
        case none
        /// Write the (rewritten) head to the client.
        case relayHead(HTTPResponseHead)
        case relayBody(ByteBuffer)
        /// The relayed response is complete: reuse the backend connection or not, keep the client's or not.
        case completeRelayed(reuseConnection: Bool, trailers: HTTPHeaders?, keepClient: Bool)
        /// A next link's plain response ended: the stream ends (grip-spec §3.6).
        case endStream(reuseConnection: Bool)
        /// GRIP instructions, complete: act on them.
        case gripComplete(HTTPResponseHead, ByteBuffer)
        case fail(ProxyErrorResponse)
    }

    /// What a backend failure, or a timeout, means.
    enum FailureAction: Equatable {
        case none
        /// Answer the client with an error (or, for a next link, count a failed attempt).
        case fail(ProxyErrorResponse)
        /// The stream the next link was appending to ends cleanly.
        case endStream
        /// The response has started and cannot be completed: the client connection ends.
        case abort
        /// Check again after this long.
        case rearm(TimeAmount)
    }

    /// The client's request (for JSON-P, the request its parameters describe).
    var requestHead: HTTPRequestHead
    private(set) var kind = RequestKind.original
    private(set) var response = Response.waitingForHead
    /// The current backend request is over (the client may still be held).
    private(set) var finished = false
    /// Whether a backend connection is attached to the current request.
    private(set) var connected = false
    /// Client body received while no backend connection is attached yet.
    private(set) var pendingBody: [ByteBuffer] = []
    private(set) var pendingBodyBytes = 0
    /// The first part of the request body, kept so the request can be re-sent on a fresh connection.
    private(set) var replayableBody: [ByteBuffer] = []
    private(set) var requestBodyBytes = 0
    private(set) var requestComplete = false
    /// A JSON-P request: its body comes from the query, whatever the client sends.
    private(set) var ignoresClientBody = false
    /// Whether the client connection may carry another request after a relayed response.
    private(set) var clientKeepAlive = true
    /// Failed attempts at the current next link (grip-spec §3.6: up to 5, with back-off).
    var linkAttempts = 0

    init(requestHead: HTTPRequestHead) {
        self.requestHead = requestHead
    }

    /// A held request taken over from an earlier server: complete, without a body, its backend request over.
    static func takenOver(requestHead: HTTPRequestHead) -> Self {
        var machine = Self(requestHead: requestHead)
        machine.requestComplete = true
        machine.finished = true
        machine.response = .complete
        return machine
    }

    /// Whether the client may keep its connection after a response the proxy makes (errors, long-poll answers).
    var keepsClient: Bool {
        self.requestHead.isKeepAlive && self.requestComplete
    }

    // MARK: - The client's request

    /// JSON-P: the request the parameters describe replaces the client's, its body given.
    mutating func replaceRequest(_ head: HTTPRequestHead, body: [UInt8]?) {
        if let body {
            let buffer = ByteBuffer(bytes: body)
            self.pendingBody = [buffer]
            self.replayableBody = [buffer]
            self.pendingBodyBytes = body.count
            self.requestBodyBytes = body.count
        }
        self.ignoresClientBody = true
        self.requestHead = head
    }

    mutating func clientBody(_ buffer: ByteBuffer) -> BodyAction {
        guard !self.finished, !self.ignoresClientBody else { return .none }
        self.requestBodyBytes += buffer.readableBytes
        if self.requestBodyBytes <= ProxyLimits.maxBufferedRequestBody {
            self.replayableBody.append(buffer)
        } else {
            self.replayableBody = []
        }
        if self.connected {
            return .forward(buffer)
        }
        self.pendingBody.append(buffer)
        self.pendingBodyBytes += buffer.readableBytes
        return .queued(pauseClient: self.pendingBodyBytes > ProxyLimits.maxPendingRequestBody)
    }

    /// The request is complete. Returns true when its end is to be written to the backend now.
    mutating func clientEnd() -> Bool {
        guard !self.finished else { return false }
        self.requestComplete = true
        return self.connected
    }

    // MARK: - Backend requests

    /// Another backend request for the same client (a retry or a next link), or the first one.
    mutating func startBackendRequest(_ kind: RequestKind) {
        self.kind = kind
        self.finished = false
        self.connected = false
        self.response = .waitingForHead
        self.pendingBody = self.replayableBody
        self.pendingBodyBytes = self.requestBodyBytes
    }

    /// Connected, the head written: what to write after it. A next link is a GET without a body, whatever the
    /// client sent.
    mutating func backendConnected() -> (body: [ByteBuffer], end: Bool) {
        self.connected = true
        let body = self.kind.isNextLink ? [] : self.pendingBody
        let end = self.kind.isNextLink || self.requestComplete
        self.pendingBody = []
        self.pendingBodyBytes = 0
        return (body, end)
    }

    /// Whether the request can be sent whole again on a fresh connection (no response byte came yet).
    var replayable: Bool {
        guard case .waitingForHead = self.response else { return false }
        return self.requestBodyBytes <= ProxyLimits.maxBufferedRequestBody
    }

    /// The request goes again on a fresh connection.
    mutating func retryingOnFreshConnection() {
        self.connected = false
        self.pendingBody = self.replayableBody
        self.pendingBodyBytes = self.requestBodyBytes
    }

    /// The backend request is over. Returns whether its connection may go back to the pool: only when
    /// `reusable` (the response is complete and keeps the connection) and the whole request was sent.
    mutating func finish(reusingConnection reusable: Bool) -> Bool {
        self.finished = true
        self.connected = false
        self.response = .complete
        return reusable && (self.requestComplete || self.kind.isNextLink)
    }

    // MARK: - The backend's response

    /// A response part. `gripAllowed`: the client is not a trusted upstream and the route does not have
    /// `no_grip`.
    mutating func responsePart(_ part: HTTPClientResponsePart, gripAllowed: Bool) -> ResponseAction {
        guard !self.finished else { return .none }
        switch (part, self.response) {
        case (.head(let head), .waitingForHead):
            return self.responseHead(head, gripAllowed: gripAllowed)
        case (.body(let buffer), .relaying), (.body(let buffer), .appendingToStream):
            return .relayBody(buffer)
        case (.body(var buffer), .bufferingGrip(let head, var body)):
            guard body.readableBytes + buffer.readableBytes <= ProxyLimits.maxGripResponseBody else {
                return .fail(.originError)
            }
            self.response = .complete  // drop the reference so `body` stays uniquely owned
            body.writeBuffer(&buffer)
            self.response = .bufferingGrip(head, body)
            return .none
        case (.end(let trailers), .relaying(let backendKeepAlive)):
            return .completeRelayed(
                reuseConnection: backendKeepAlive,
                trailers: trailers,
                keepClient: self.clientKeepAlive && self.requestComplete
            )
        case (.end, .appendingToStream(let backendKeepAlive)):
            return .endStream(reuseConnection: backendKeepAlive)
        case (.end, .bufferingGrip(let head, let body)):
            return .gripComplete(head, body)
        default:
            return .fail(.originError)
        }
    }

    private mutating func responseHead(_ head: HTTPResponseHead, gripAllowed: Bool) -> ResponseAction {
        if case .nextLink = self.kind {
            if GripResponseInspection.isGripResponse(head) {
                self.response = .bufferingGrip(head, ByteBuffer())
            } else if (200..<300).contains(head.status.code) {
                self.linkAttempts = 0
                self.response = .appendingToStream(backendKeepAlive: head.isKeepAlive)
            } else {
                return .fail(.originError)
            }
            return .none
        }
        if gripAllowed && GripResponseInspection.isGripResponse(head) {
            guard self.requestBodyBytes <= ProxyLimits.maxBufferedRequestBody else {
                return .fail(.requestTooLargeForGrip)
            }
            self.response = .bufferingGrip(head, ByteBuffer())
            return .none
        }
        var headers = head.headers
        HopByHopHeaders.remove(from: &headers)
        // A close-delimited body cannot be re-framed for an HTTP/1.0 client without closing afterwards.
        let hasLength = headers.contains(name: "content-length")
        let bodyless =
            self.requestHead.method == .HEAD || head.status == .noContent || head.status == .notModified
            || head.status.code < 200
        self.clientKeepAlive =
            self.requestHead.isKeepAlive && (self.requestHead.version.minor >= 1 || hasLength || bodyless)
        if !self.clientKeepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if self.requestHead.version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        self.response = .relaying(backendKeepAlive: head.isKeepAlive)
        return .relayHead(HTTPResponseHead(version: self.requestHead.version, status: head.status, headers: headers))
    }

    /// Whether response bytes are being passed on (the client should get a flush after each backend read).
    var isPassingBodyOn: Bool {
        switch self.response {
        case .relaying, .appendingToStream: return true
        default: return false
        }
    }

    /// What complete GRIP instructions mean.
    enum GripOutcome: Equatable {
        /// A next link answered with a non-2xx status: a failed attempt.
        case nextLinkFailed
        /// The instructions do not parse.
        case invalid(InstructError)
        /// A next link's instructions: they go on with the stream.
        case nextLinkAnswered(Instruct)
        /// Hold the client (or stream, then follow a next link).
        case hold(Instruct)
        /// Answer the client at once.
        case respond(HTTPResponseHead, [UInt8])
    }

    /// GRIP instructions, buffered whole (``ResponseAction/gripComplete(_:_:)``).
    func gripOutcome(head: HTTPResponseHead, body: ByteBuffer) -> GripOutcome {
        if self.kind.isNextLink, !(200..<300).contains(head.status.code) {
            return .nextLinkFailed
        }
        let instruct: Instruct
        do {
            instruct = try Instruct.parse(
                status: Int(head.status.code),
                reason: head.status.reasonPhrase,
                headers: head.headers.map { ($0.name, $0.value) },
                body: Array(body.readableBytesView)
            )
        } catch {
            return .invalid(error)
        }
        if self.kind.isNextLink {
            return .nextLinkAnswered(instruct)
        }
        if instruct.holdMode != .none || instruct.nextLink != nil {
            return .hold(instruct)
        }
        var headers = HTTPHeaders(instruct.response.headers.map { ($0.name, $0.value) })
        headers.add(name: "Content-Length", value: String(instruct.response.body.count))
        let answer = HTTPResponseHead(
            version: self.requestHead.version,
            status: .custom(code: UInt(instruct.response.code), reasonPhrase: instruct.response.reason),
            headers: headers
        )
        return .respond(answer, instruct.response.body)
    }

    // MARK: - Failures

    /// The backend connection closed or failed (and the request is not being sent again).
    mutating func backendClosed() -> FailureAction {
        guard !self.finished else { return .none }
        self.connected = false
        switch self.response {
        case .waitingForHead, .bufferingGrip:
            return .fail(.originError)
        case .appendingToStream:
            return .endStream
        case .relaying, .complete:
            return .abort
        }
    }

    /// The response timer fired at `now`. The backend was last heard from at `lastActivity`; `readPaused`: the
    /// exchange waits on the client, not on the backend. Fires at most once per period; activity since only
    /// moves the deadline.
    func timeoutFired(
        now: NIODeadline,
        lastActivity: NIODeadline,
        timeout: TimeAmount,
        readPaused: Bool
    ) -> FailureAction {
        guard !self.finished, self.connected else { return .none }
        let deadline = lastActivity + timeout
        if readPaused {
            return .rearm(timeout)
        }
        if deadline > now {
            return .rearm(deadline - now)
        }
        if case .waitingForHead = self.response {
            return .fail(.originTimeout)
        }
        return .abort
    }
}
