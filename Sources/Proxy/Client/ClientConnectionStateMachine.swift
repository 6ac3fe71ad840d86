import NIOCore
import NIOHTTP1

/// The decisions of a client connection (``ClientConnectionHandler``), apart from the socket: which request part
/// goes to the exchange and which waits behind it (pipelining), when reading pauses and resumes, and whether the
/// connection stays open after a response, a half-close, a shutdown or an unparsable request. Each method takes an
/// event and returns what the handler must do.
struct ClientConnectionStateMachine {
    /// Parts of pipelined requests queued before the client is paused.
    static let maxQueuedParts = 64
    static let maxQueuedBytes = 64 * 1024

    enum State: Equatable {
        /// No request: the next part read starts one.
        case idle
        /// A request is being answered. `bodyArriving`: its end has not been read yet.
        case answering(bodyArriving: Bool)
        /// The response is complete but the request's body is still arriving: it is read and dropped.
        case draining
        /// A WebSocket handshake; the connection carries no more HTTP requests.
        case upgrading
        /// The connection is closing or closed.
        case closed
    }

    /// What to do with a request part.
    enum PartAction: Equatable {
        /// A new request: routing, then an exchange or a WebSocket (the handler reports which).
        case startRequest(HTTPRequestHead)
        case forwardBody(ByteBuffer)
        case forwardEnd
        /// Nothing (queued behind the current request, or dropped).
        case none
    }

    /// What to do when a response ends.
    enum EndAction: Equatable {
        /// Keep the connection; then hand over queued requests (on the next loop turn), or resume reading.
        case keepOpen(deliverQueued: Bool, read: Bool)
        /// Close the connection once the end is written.
        case close
    }

    /// What to do about an event that may end the connection.
    enum CloseAction: Equatable {
        case none
        case close
        /// The exchange decides (quiescing: a held request gets its timeout response, a stream ends).
        case quiesceExchange
        /// Answer the unparsable request with `response`, then close.
        case respondAndClose(ProxyErrorResponse)
        /// End the response in flight as cleanly as its framing allows, then close.
        case endResponseAndClose
    }

    private(set) var state = State.idle
    /// Whether a response has started since the last request head (its head is written).
    private(set) var responseStarted = false
    /// Parts of pipelined requests behind the current one, and their body bytes.
    private(set) var queuedParts: [HTTPServerRequestPart] = []
    private(set) var queuedBytes = 0
    /// The server is shutting down: close once the current response is complete.
    private(set) var quiescing = false
    /// The client half-closed (sent FIN): no more requests come.
    private(set) var inputClosed = false
    private(set) var pausedForBackend = false
    private(set) var pausedForQueue = false
    /// A read was asked for while paused.
    private(set) var readPending = false

    init() {}

    /// Whether an exchange is answering a request (the response is not complete).
    var isAnswering: Bool {
        if case .answering = self.state { return true }
        return false
    }

    /// A held request taken over from an earlier server: being answered, its request complete; `headWritten`
    /// when its response (a stream's) has started.
    mutating func takeOverHeldRequest(headWritten: Bool) {
        self.state = .answering(bodyArriving: false)
        self.responseStarted = headWritten
    }

    // MARK: - Reading

    /// A request part was read.
    mutating func partRead(_ part: HTTPServerRequestPart) -> PartAction {
        switch self.state {
        case .upgrading, .closed:
            // Nothing follows an upgrade request but the upgraded protocol.
            return .none
        case .answering(bodyArriving: false):
            self.enqueue(part)
            return .none
        case .idle, .draining, .answering(bodyArriving: true):
            if !self.queuedParts.isEmpty {
                self.enqueue(part)
                return .none
            }
            return self.deliver(part)
        }
    }

    private mutating func enqueue(_ part: HTTPServerRequestPart) {
        self.queuedParts.append(part)
        if case .body(let buffer) = part {
            self.queuedBytes += buffer.readableBytes
        }
        if self.queuedParts.count > Self.maxQueuedParts || self.queuedBytes > Self.maxQueuedBytes {
            self.pausedForQueue = true
        }
    }

    private mutating func deliver(_ part: HTTPServerRequestPart) -> PartAction {
        switch (part, self.state) {
        case (.head(let head), _):
            self.state = .answering(bodyArriving: true)
            self.responseStarted = false
            return .startRequest(head)
        case (.body(let buffer), .answering(bodyArriving: true)):
            return .forwardBody(buffer)
        case (.end, .answering(bodyArriving: true)):
            self.state = .answering(bodyArriving: false)
            return .forwardEnd
        case (.end, .draining):
            self.state = .idle
            return .none
        default:
            return .none
        }
    }

    /// The next queued part to hand over, while the current request does not hold them back; nil when none is.
    mutating func nextQueuedPart() -> PartAction? {
        switch self.state {
        case .answering(bodyArriving: false), .upgrading, .closed:
            return nil
        case .idle, .draining, .answering(bodyArriving: true):
            guard !self.queuedParts.isEmpty else { return nil }
            let part = self.queuedParts.removeFirst()
            if case .body(let buffer) = part {
                self.queuedBytes -= buffer.readableBytes
            }
            return self.deliver(part)
        }
    }

    /// The queued parts that can be were handed over. Returns true when reading resumes.
    mutating func queueDelivered() -> Bool {
        guard self.pausedForQueue, self.queuedParts.count <= Self.maxQueuedParts,
            self.queuedBytes <= Self.maxQueuedBytes
        else { return false }
        self.pausedForQueue = false
        return self.resumeReading()
    }

    /// The channel asks to read. Returns false when reading is paused (the read happens on resuming).
    mutating func readRequested() -> Bool {
        if self.pausedForBackend || self.pausedForQueue {
            self.readPending = true
            return false
        }
        return true
    }

    /// The backend can take no more of the request body, or can again. Returns true when reading resumes.
    mutating func backendPaused(_ paused: Bool) -> Bool {
        self.pausedForBackend = paused
        return self.resumeReading()
    }

    private mutating func resumeReading() -> Bool {
        guard !self.pausedForBackend, !self.pausedForQueue, self.readPending else { return false }
        self.readPending = false
        return true
    }

    // MARK: - Answering

    /// The request is a WebSocket handshake: nothing more is read as HTTP.
    mutating func webSocketStarted() {
        self.state = .upgrading
        self.responseStarted = false
    }

    /// The `101` is written: the WebSocket handlers take the connection over.
    mutating func webSocketUpgraded() {
        self.responseStarted = true
        self.state = .closed
    }

    mutating func responseHeadWritten() {
        self.responseStarted = true
    }

    /// The response ended; `keepAlive` says whether the response lets the connection carry another request.
    mutating func responseEnded(keepAlive: Bool) -> EndAction {
        self.pausedForBackend = false
        let bodyArriving: Bool
        switch self.state {
        case .answering(let arriving):
            bodyArriving = arriving
        case .draining:
            bodyArriving = true
        case .idle, .upgrading, .closed:
            bodyArriving = false
        }
        guard keepAlive, !self.quiescing, !(self.inputClosed && self.queuedParts.isEmpty), self.state != .closed
        else {
            self.queuedParts = []
            self.queuedBytes = 0
            self.state = .closed
            return .close
        }
        self.state = bodyArriving ? .draining : .idle
        if self.queuedParts.isEmpty {
            return .keepOpen(deliverQueued: false, read: self.resumeReading())
        }
        return .keepOpen(deliverQueued: true, read: false)
    }

    /// The connection ends without completing the response (the backend failed mid-response).
    mutating func aborted() {
        self.state = .closed
    }

    // MARK: - Ending

    /// The client half-closed. A half-close after a request is not a disconnect (as Pushpin 1.40+): the
    /// requests received are answered. A FIN once a response has started, or while held (`exchangeIsHeld`:
    /// long-poll, stream), is almost always a client that has gone: that still ends the connection.
    mutating func inputClosed(exchangeIsHeld: Bool) -> CloseAction {
        self.inputClosed = true
        let answering = !self.queuedParts.isEmpty || (self.isAnswering && !exchangeIsHeld && !self.responseStarted)
        if answering {
            return .none
        }
        self.state = .closed
        return .close
    }

    /// The server is shutting down: an idle connection closes now, a busy one after its response.
    mutating func quiesce() -> CloseAction {
        self.quiescing = true
        if self.isAnswering {
            return .quiesceExchange
        }
        self.state = .closed
        return .close
    }

    /// The shutdown grace period is over.
    mutating func shutdownDeadline() -> CloseAction {
        let answering = self.isAnswering
        self.state = .closed
        return answering && self.responseStarted ? .endResponseAndClose : .close
    }

    /// A request could not be parsed: it ends the connection, answered if no response has started.
    mutating func parseError(_ error: HTTPParserError) -> CloseAction {
        self.state = .closed
        if self.responseStarted {
            return .close
        }
        return .respondAndClose(error == .headerOverflow ? .headersTooLarge : .malformedRequest)
    }

    /// The connection closed.
    mutating func channelInactive() {
        self.state = .closed
        self.queuedParts = []
        self.queuedBytes = 0
    }
}
