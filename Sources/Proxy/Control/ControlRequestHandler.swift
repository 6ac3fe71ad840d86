import Foundation
import GRIP
import NIOCore
import NIOHTTP1
import Publish

/// Serves one control API connection on its event loop: reads a request, answers it (a publish once its items
/// are committed), and reads the next one when the client asked for keep-alive.
///
/// The exchange never leaves the event loop except for the commit itself: the store calls back from its writer
/// and the answer hops straight back here. (Serving through `NIOAsyncChannel` cost two more thread hops per
/// request, resuming a task and hopping back to the loop, and those wake-ups were most of a one-item publish's
/// cost.)
///
/// One request at a time: while one is being answered, reads are held and parts that arrived pipelined behind it
/// wait in `queued`. Refusals decided from the head (or a body over the limit) are answered at once, the output is
/// half-closed and what the client still sends is read and discarded until it closes, at most
/// ``ControlResponse/drainTime``, so that closing does not reset the connection before the client has read the
/// answer.
final class ControlRequestHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
        /// Waiting for a request head.
        case idle
        /// Reading the body of a request the API will answer.
        case reading(ReadingRequest)
        /// The API is answering; reads are held.
        case answering(HTTPRequestHead)
        /// Streaming the status page's events until the connection closes.
        case streaming
        /// Answered early, output half-closed: discarding input until the client closes.
        case draining
        case closed
    }

    struct ReadingRequest {
        var head: HTTPRequestHead
        var endpoint: ControlAPI.Endpoint
        var json: Bool
        var body: [UInt8] = []
    }

    private let api: ControlAPI
    private let maxBodySize: Int
    private let connections: ControlConnections
    private(set) var state = State.idle
    /// Parts that arrived behind a request being answered (pipelined).
    private(set) var queued: [HTTPServerRequestPart] = []
    /// A read the channel asked for while a request was being answered.
    private var heldRead = false
    /// Nothing more can be read (the client shut down its sending side, or what it sent next cannot be parsed):
    /// the connection closes once the request in progress is answered.
    private(set) var inputClosed = false
    private(set) var context: ChannelHandlerContext?
    /// Counts the connection's reads, and the count when the last request ended: a read since then is a request
    /// not yet parsed whole (see ``handOver()``).
    let readCounter: ClientReadCounter
    private(set) var readsAtRequestEnd = 0
    /// A hand-over is under way: no new request is read (one being read goes on).
    var readsHeldForHandover = false

    init(api: ControlAPI, maxBodySize: Int, connections: ControlConnections, readCounter: ClientReadCounter) {
        self.api = api
        self.maxBodySize = maxBodySize
        self.connections = connections
        self.readCounter = readCounter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch self.state {
        case .answering, .streaming:
            self.queued.append(part)
        case .idle, .reading, .draining, .closed:
            self.handle(part, context: context)
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (self.state, part) {
        case (.idle, .head(let head)):
            self.start(head, context: context)
        case (.idle, .body), (.idle, .end):
            // Only a head starts a request (the decoder sends nothing else between requests).
            break
        case (.reading(var request), .body(let buffer)):
            guard request.body.count + buffer.readableBytes <= self.maxBodySize else {
                self.answerEarly(ControlResponse.bodyTooLarge, version: request.head.version, context: context)
                return
            }
            request.body += buffer.readableBytesView
            self.state = .reading(request)
        case (.reading(let request), .end):
            self.readsAtRequestEnd = self.readCounter.reads
            self.answer(request, context: context)
        case (.reading, .head):
            // The decoder never sends a head before the previous request's end.
            context.close(promise: nil)
        case (.draining, _), (.closed, _), (.answering, _), (.streaming, _):
            break
        }
    }

    /// A request head: refused at once, streamed, or read.
    private func start(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.connections.requestStarted(on: context.channel)
        if let refusal = ControlResponse.framingRefusal(head, maxBodySize: self.maxBodySize) {
            self.answerEarly(refusal, version: head.version, context: context)
            return
        }
        switch self.api.plan(head) {
        case .respond(let response):
            self.answerEarly(response, version: head.version, context: context)
        case .read(.statusEvents, _):
            self.streamStatus(version: head.version, context: context)
        case .read(let endpoint, let json):
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(
                    self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                    promise: nil
                )
            }
            self.state = .reading(ReadingRequest(head: head, endpoint: endpoint, json: json))
        }
    }

    /// Hands a complete request to the API; its answer comes back on this event loop.
    private func answer(_ request: ReadingRequest, context: ChannelHandlerContext) {
        self.state = .answering(request.head)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        self.api.respond(to: request.endpoint, body: request.body, json: request.json) { response in
            eventLoop.execute {
                bound.value.handler.answered(response, context: bound.value.context)
            }
        }
    }

    private func answered(_ response: ControlResponse, context: ChannelHandlerContext) {
        guard case .answering(let head) = self.state else {
            // The connection closed meanwhile: the answer has no one to go to.
            return
        }
        let keepAlive = head.isKeepAlive && !self.connections.isShuttingDown && !self.inputClosed
        self.write(response, version: head.version, keepAlive: keepAlive, context: context)
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        // Idle only once the answer is out: a shutdown closes idle connections at once.
        guard self.connections.requestFinished(on: context.channel) && keepAlive else {
            self.state = .closed
            let channel = context.channel
            written.whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        self.state = .idle
        self.resumeReading(context: context)
    }

    /// Goes on with the parts that arrived meanwhile, then with reading.
    func resumeReading(context: ChannelHandlerContext) {
        while !self.queued.isEmpty && !self.isHoldingReads {
            self.handle(self.queued.removeFirst(), context: context)
        }
        guard !self.isHoldingReads else { return }
        if self.inputClosed {
            switch self.state {
            case .idle, .reading:
                // Nothing more will arrive: no next request, or one cut short (not answered).
                context.close(promise: nil)
                return
            case .answering, .streaming, .draining, .closed:
                break
            }
        }
        if self.heldRead {
            self.heldRead = false
            context.read()
        }
    }

    private var isHoldingReads: Bool {
        switch self.state {
        case .answering, .streaming: true
        case .idle: self.readsHeldForHandover
        case .reading, .draining, .closed: false
        }
    }

    /// Answers before the request body was read: writes the response, half-closes, then discards what the client
    /// still sends until it closes, at most ``ControlResponse/drainTime``.
    private func answerEarly(_ response: ControlResponse, version: HTTPVersion, context: ChannelHandlerContext) {
        self.state = .draining
        self.queued = []
        self.write(response, version: version, keepAlive: false, context: context)
        let inputClosed = self.inputClosed
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            channel.close(mode: inputClosed ? .all : .output, promise: nil)
        }
        _ = context.eventLoop.scheduleTask(in: ControlResponse.drainTime) {
            channel.close(promise: nil)
        }
        if !inputClosed && self.heldRead {
            self.heldRead = false
            context.read()
        }
    }

    private func write(
        _ response: ControlResponse,
        version: HTTPVersion,
        keepAlive: Bool,
        context: ChannelHandlerContext
    ) {
        context.write(self.wrapOutboundOut(.head(response.head(version: version, keepAlive: keepAlive))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        self.inputClosed = true
        switch self.state {
        case .idle, .reading, .draining:
            // Nothing left to answer (a request cut short is not answered).
            context.close(promise: nil)
        case .answering, .streaming, .closed:
            // Answered first; then closed (resumeReading / the stream's end).
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch self.state {
        case .answering:
            // What follows the request being answered cannot be read (a pipelined request cut short by the
            // client's close, garbage): the answer still goes out, then the connection closes.
            self.queued = []
            self.inputClosed = true
        case .idle, .reading:
            guard let parserError = error as? HTTPParserError else {
                context.close(promise: nil)
                return
            }
            self.answerEarly(.text(400, ControlResponse.text(for: parserError)), version: .http1_1, context: context)
        case .streaming, .draining, .closed:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state = .closed
        self.queued = []
        context.fireChannelInactive()
    }

    // MARK: - Outbound

    func read(context: ChannelHandlerContext) {
        if self.isHoldingReads {
            self.heldRead = true
            return
        }
        context.read()
    }

    // MARK: - The status page's stream

    /// `GET /status/events`: the status snapshot as an SSE event every second, until the client leaves or the
    /// server shuts down (the read timeout does not apply: the client never sends more).
    private func streamStatus(version: HTTPVersion, context: ChannelHandlerContext) {
        self.state = .streaming
        let pipeline = context.pipeline.syncOperations
        if let idle = try? pipeline.handler(type: IdleStateHandler.self) {
            pipeline.removeHandler(idle, promise: nil)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Connection", value: "close")
        let responseVersion = version == .http1_0 ? HTTPVersion.http1_0 : .http1_1
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: responseVersion, status: .ok, headers: headers))),
            promise: nil
        )
        context.writeAndFlush(
            self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "retry: 2000\n\n")))),
            promise: nil
        )
        // Not a request waiting for its answer: a shutdown closes the stream at once.
        _ = self.connections.requestFinished(on: context.channel)
        let channel = context.channel
        let hub = self.api.hub
        let stream = Task {
            while channel.isActive && !Task.isCancelled {
                let snapshot = await hub.statusSnapshot(now: Date().timeIntervalSince1970)
                var event = Array("data: ".utf8)
                event += snapshot.encoded()
                event += Array("\n\n".utf8)
                channel.writeAndFlush(
                    HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: event))),
                    promise: nil
                )
                try? await Task.sleep(for: .seconds(1))
            }
        }
        channel.closeFuture.whenComplete { _ in
            stream.cancel()
        }
    }
}

@available(*, unavailable)
extension ControlRequestHandler: Sendable {}

/// Closes a connection when ``IdleStateHandler`` reports that nothing was read for a while.
final class CloseOnIdleHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension CloseOnIdleHandler: Sendable {}
