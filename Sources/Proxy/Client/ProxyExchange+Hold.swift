import Foundation
import GRIP
import Logging
import NIOCore
import NIOHTTP1
import Publish

/// The state of an exchange while the publish side holds its client.
final class HeldExchange {
    let generation: Int
    let instruct: Instruct
    /// The next link, resolved.
    let nextLink: NextLink?
    /// The publish side's session, once the hub decided to hold.
    var session: HoldSession?
    /// Response holds: the timeout.
    var timeout: Scheduled<Void>?
    /// Stream holds: the keep-alive timer and the next-link timer.
    var keepAlive: Scheduled<Void>?
    var linkTimer: Scheduled<Void>?
    /// A next link's retry after a failed attempt.
    var linkRetry: Scheduled<Void>?
    /// Stream writes made, and bytes written, while the client was not taking data.
    var writesWhileUnwritable = 0
    var bytesWhileUnwritable = 0
    /// Whether the metrics count this hold among the held connections.
    var countedAsHeld = false

    init(generation: Int, instruct: Instruct, nextLink: NextLink?) {
        self.generation = generation
        self.instruct = instruct
        self.nextLink = nextLink
    }

    func cancelTimers() {
        self.timeout?.cancel()
        self.keepAlive?.cancel()
        self.linkTimer?.cancel()
        self.linkRetry?.cancel()
    }
}

/// Holds (grip-spec §3.4-3.6): handing the client to the publish side, and what the connection itself does while
/// held: the long-poll timeout, the stream's head, content, keep-alives and end, next links and re-sent requests.
extension ProxyExchange {
    /// Stream writes, and bytes, a client may leave unread beyond NIO's buffer before it is disconnected (a slow
    /// client never holds back the others, nor grows the server's memory; it resumes from its last id when it
    /// reconnects).
    static let maxWritesWhileUnwritable = 1000
    static let maxBytesWhileUnwritable = 2 * 1024 * 1024
    /// Attempts at a next link before the stream ends (grip-spec §3.6).
    static let maxLinkAttempts = 5

    /// Starts holding the client as `instruct` says (also for a next link's answer that holds again).
    func beginHold(_ instruct: Instruct) {
        guard let route = self.route else { return }
        if self.client.inputClosed {
            // The client sent FIN before the backend said to hold: held clients that do so have gone.
            self.endHold()
            self.client.abortConnection()
            return
        }
        var instruct = instruct
        do {
            instruct.response.body = try Self.filteredInitialBody(instruct)
        } catch {
            self.logger.info("hold refused by a content filter", metadata: ["error": "\(error.message)"])
            if self.streamStarted {
                self.endStream(debugMessage: "filter error: \(error.message)")
            } else {
                self.endHold()
                self.sendErrorResponse(self.isDebug ? .filterError("filter error: \(error.message)") : .originError)
            }
            return
        }
        var base = NextLink.baseURI(of: self.requestHead, originForm: self.originForm)
        if case .nextLink(let link, _) = self.requestKind {
            base = link.uri
        }
        let nextLink = instruct.nextLink.flatMap { link in base.flatMap { NextLink.resolve(link, against: $0) } }
        self.endHold()
        self.holdGeneration += 1
        let held = HeldExchange(generation: self.holdGeneration, instruct: instruct, nextLink: nextLink)
        self.hold = held
        if instruct.holdMode == .none {
            // A next link without a hold: send what there is, then fetch the link.
            self.startStream(instruct.response, resetChannels: [])
            self.fetchNextLink(gripLast: [])
            return
        }
        var channels = instruct.channels.map { channel in
            HoldRequest.Channel(
                name: route.prefix + channel.name,
                backendName: channel.name,
                prevID: channel.prevID,
                filters: channel.filters
            )
        }
        let isEventStream = instruct.response.headers.contains { field in
            field.hasName("Content-Type") && field.value.lowercased().hasPrefix("text/event-stream")
        }
        if instruct.holdMode == .stream, route.resumeLastEventID,
            let lastEventID = self.requestHead.headers.first(name: "last-event-id"), !lastEventID.isEmpty
        {
            for index in channels.indices where channels[index].prevID == nil {
                channels[index].prevID = lastEventID
            }
        }
        var isRecovery = true
        if case .original = self.requestKind {
            isRecovery = false
        }
        let request = HoldRequest(
            mode: instruct.holdMode,
            channels: channels,
            response: instruct.response,
            meta: instruct.meta,
            hasNextLink: nextLink != nil,
            isEventStream: isEventStream,
            isRecovery: isRecovery,
            routeID: route.hasExplicitID ? route.id : nil,
            clientAddress: self.client.remoteAddressText,
            keepAliveDescription: instruct.keepAlive.map { "\($0.mode.rawValue) every \($0.timeout)s" },
            linksDescription: nextLink.map { "next: \($0.uri.absoluteString)" },
            timeoutAt: instruct.holdMode == .response ? Date().addingTimeInterval(Double(instruct.timeout)) : nil
        )
        let connection = HeldClient(exchange: self, generation: held.generation)
        self.engine.hub.startHold(request, connection: connection) { decision in
            connection.decided(decision)
        }
    }

    /// A stream's initial body through its channels' filters that act on responses (`build-id`, grip-spec §3.5
    /// item 10), with the backend's prev-ids as the channels' ids.
    private static func filteredInitialBody(_ instruct: Instruct) throws(ContentFilterError) -> [UInt8] {
        guard instruct.holdMode == .stream else { return instruct.response.body }
        var filters: [String] = []
        for channel in instruct.channels {
            for filter in channel.filters where ContentFilters.acts(filter, on: .response) && !filters.contains(filter)
            {
                filters.append(filter)
            }
        }
        guard !filters.isEmpty else { return instruct.response.body }
        var ids: [String: String?] = [:]
        for channel in instruct.channels {
            ids[channel.name] = .some(channel.prevID)
        }
        let context = ContentFilterContext(subscriptionMeta: instruct.meta, channelIDs: ids)
        return try ContentFilters.apply(filters, to: instruct.response.body, on: .response, context: context)
    }

    /// The hub's decision for the current hold.
    func holdDecided(_ decision: HoldDecision, generation: Int) {
        guard let held = self.hold, held.generation == generation else {
            if case .hold(let session, _) = decision {
                session.end()
            }
            return
        }
        let instruct = held.instruct
        switch decision {
        case .hold(let session, let resetChannels):
            held.session = session
            held.countedAsHeld = self.engine.metrics != nil
            self.engine.metrics?.holdChanged(stream: instruct.holdMode == .stream, opened: true)
            if instruct.holdMode == .response {
                held.timeout = self.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(instruct.timeout))) {
                    self.holdTimedOut(generation: generation)
                }
            } else {
                self.startStream(instruct.response, resetChannels: resetChannels)
                self.armKeepAlive(held)
                self.armLinkTimer(held)
            }
            session.activate()
        case .reset(let channels):
            self.endHold()
            self.respond(with: instruct.response, resetChannels: channels)
        case .recover(let gripLast):
            if instruct.holdMode == .response {
                self.endHold()
                self.startBackendRequest(.retry(gripLast))
            } else {
                self.startStream(instruct.response, resetChannels: [])
                self.fetchNextLink(gripLast: gripLast)
            }
        }
    }

    // MARK: - Long-polls

    /// Answers a long-poll: with the hold's own response (its timeout, a reset, or shutdown) or a published one.
    private func respond(with response: Instruct.Response, resetChannels: [String] = []) {
        var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
        if !resetChannels.isEmpty {
            headers.add(name: "P8-Reset", value: resetChannels.joined(separator: ", "))
        }
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        let head = HTTPResponseHead(
            version: self.requestHead.version,
            status: .custom(code: UInt(response.code), reasonPhrase: response.reason),
            headers: headers
        )
        let keepAlive = self.requestHead.isKeepAlive && self.requestComplete
        self.client.respond(head: head, body: ByteBuffer(bytes: response.body), keepAlive: keepAlive)
    }

    private func holdTimedOut(generation: Int) {
        guard let held = self.hold, held.generation == generation else { return }
        self.endHold()
        self.respond(with: held.instruct.response)
    }

    /// A publish released the long-poll.
    func heldResponse(_ response: Instruct.Response, generation: Int) {
        guard let held = self.hold, held.generation == generation else { return }
        self.endHold()
        self.respond(with: response)
    }

    // MARK: - Streams

    /// Sends a stream's head (once per client response) and then `response`'s body.
    private func startStream(_ response: Instruct.Response, resetChannels: [String]) {
        if !self.streamStarted {
            self.streamStarted = true
            var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
            if !resetChannels.isEmpty {
                headers.add(name: "P8-Reset", value: resetChannels.joined(separator: ", "))
            }
            if self.requestHead.version.minor == 0 {
                // No chunked encoding for HTTP/1.0: the stream ends with the connection.
                headers.replaceOrAdd(name: "Connection", value: "close")
            }
            self.client.writeHead(
                HTTPResponseHead(
                    version: self.requestHead.version,
                    status: .custom(code: UInt(response.code), reasonPhrase: response.reason),
                    headers: headers
                )
            )
        }
        if !response.body.isEmpty {
            self.client.writeBody(ByteBuffer(bytes: response.body))
        }
        self.client.flush()
    }

    /// Published content for the stream.
    func heldStreamContent(_ content: [UInt8], generation: Int) {
        guard let held = self.hold, held.generation == generation, self.streamStarted else { return }
        self.writeToStream(content, held)
        if held.instruct.keepAlive?.mode == .idle {
            self.armKeepAlive(held)
        }
        self.armLinkTimer(held)
    }

    private func writeToStream(_ content: [UInt8], _ held: HeldExchange) {
        self.client.writeBody(SharedContent.buffer(content))
        self.client.flush()
        guard !self.client.isWritable else {
            held.writesWhileUnwritable = 0
            held.bytesWhileUnwritable = 0
            return
        }
        held.writesWhileUnwritable += 1
        held.bytesWhileUnwritable += content.count
        if held.writesWhileUnwritable > Self.maxWritesWhileUnwritable
            || held.bytesWhileUnwritable > Self.maxBytesWhileUnwritable
        {
            // Debug, as for WebSockets: when a network goes, thousands are cut at once, and a line each (written
            // on the event loop) delays the clients still served. p8_slow_clients_disconnected_total counts them.
            self.logger.debug("stream client too slow: disconnected")
            self.engine.metrics?.slowClientDisconnected(transport: "http-stream")
            self.endHold()
            self.client.abortConnection()
        }
    }

    /// A content filter failed: a long-poll answers 502, a stream ends (grip-spec §3.7).
    func heldFilterFailed(_ message: String, generation: Int) {
        guard let held = self.hold, held.generation == generation else { return }
        if held.instruct.holdMode == .response {
            self.endHold()
            self.sendErrorResponse(self.isDebug ? .filterError(message) : .originError)
        } else {
            self.endStream(debugMessage: message)
        }
    }

    /// A published `close` action.
    func heldStreamEnded(generation: Int) {
        guard let held = self.hold, held.generation == generation else { return }
        self.endStream(debugMessage: nil)
    }

    /// Ends the stream cleanly, with a debug message first when the route has `debug` on.
    func endStream(debugMessage: String?) {
        guard self.streamStarted else {
            self.endHold()
            self.sendErrorResponse(.originError)
            return
        }
        if let debugMessage, self.isDebug {
            self.client.writeBody(ByteBuffer(string: "\n\n\(debugMessage)\n"))
        }
        self.endHold()
        let keepAlive = self.requestHead.isKeepAlive && self.requestHead.version.minor >= 1 && self.requestComplete
        self.client.endResponse(trailers: nil, keepAlive: keepAlive)
    }

    private func armKeepAlive(_ held: HeldExchange) {
        guard let keepAlive = held.instruct.keepAlive else { return }
        held.keepAlive?.cancel()
        // Like Pushpin, shorten each period by up to a second (a tenth of it at most), so that many streams do
        // not wake together.
        let period = Int64(keepAlive.timeout) * 1000
        let delay = TimeAmount.milliseconds(period - Int64.random(in: 0..<min(1000, period / 10 + 1)))
        held.keepAlive = self.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard self.hold === held else { return }
            self.writeToStream(keepAlive.data, held)
            if self.hold === held {
                self.armKeepAlive(held)
            }
        }
    }

    /// A stream with a next link fetches it when no item came for the link's timeout.
    private func armLinkTimer(_ held: HeldExchange) {
        guard let link = held.nextLink, held.instruct.holdMode == .stream else { return }
        held.linkTimer?.cancel()
        held.linkTimer = self.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(link.timeout))) {
            guard self.hold === held else { return }
            held.session?.recover()
        }
    }

    // MARK: - Recovery and next links

    /// The publish side asks the backend to fill a gap.
    func heldRecover(_ gripLast: [GripLast], generation: Int) {
        guard let held = self.hold, held.generation == generation else { return }
        if held.instruct.holdMode == .response {
            self.endHold()
            self.startBackendRequest(.retry(gripLast))
        } else {
            self.fetchNextLink(gripLast: gripLast)
        }
    }

    /// Fetches the current hold's next link; without one, the stream ends.
    private func fetchNextLink(gripLast: [GripLast]) {
        guard let held = self.hold, let link = held.nextLink else {
            self.endStream(debugMessage: nil)
            return
        }
        held.session?.end()
        held.session = nil
        held.cancelTimers()
        self.linkAttempts = 0
        self.startBackendRequest(.nextLink(link, gripLast))
    }

    /// A next link answered with GRIP instructions (its body goes to the stream before they take effect).
    func nextLinkAnswered(_ instruct: Instruct) {
        self.linkAttempts = 0
        switch instruct.holdMode {
        case .response:
            self.endStream(debugMessage: "Next link returned non-stream hold.")
        case .none where instruct.nextLink == nil:
            if !instruct.response.body.isEmpty {
                self.client.writeBody(ByteBuffer(bytes: instruct.response.body))
            }
            self.endStream(debugMessage: nil)
        case .none, .stream:
            self.beginHold(instruct)
        }
    }

    /// A next link could not be fetched (connection error, timeout, non-2xx): try again with back-off
    /// (1, 2, 4, 8, 16 s, plus up to a second), then end the stream.
    func nextLinkFailed() {
        guard let held = self.hold else { return }
        self.linkAttempts += 1
        guard self.linkAttempts < Self.maxLinkAttempts + 1 else {
            self.endStream(debugMessage: "Failed to retrieve next link.")
            return
        }
        let kind = self.requestKind
        let delay = TimeAmount.milliseconds((1 << Int64(self.linkAttempts - 1)) * 1000 + Int64.random(in: 0..<1000))
        held.linkRetry = self.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard self.hold === held else { return }
            self.startBackendRequest(kind)
        }
    }

    // MARK: - Ending

    /// Ends the hold: timers stop and the publish side forgets the client. Safe to call when not held.
    func endHold() {
        guard let held = self.hold else { return }
        self.hold = nil
        if held.countedAsHeld {
            self.engine.metrics?.holdChanged(stream: held.instruct.holdMode == .stream, opened: false)
        }
        held.cancelTimers()
        held.session?.end()
    }

    /// The server is shutting down: a long-poll gets its timeout response now, a stream ends cleanly.
    func quiesce() {
        guard let held = self.hold, self.finished else { return }
        if held.instruct.holdMode == .response {
            self.holdTimedOut(generation: held.generation)
        } else {
            self.endStream(debugMessage: nil)
        }
    }
}
