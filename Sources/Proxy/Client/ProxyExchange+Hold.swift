import Foundation
import GRIP
import Logging
import NIOCore
import NIOHTTP1
import Publish

/// Holds (grip-spec §3.4-3.6): handing the client to the publish side, and what the connection itself does while
/// held: the long-poll timeout, the stream's head, content, keep-alives and end, next links and re-sent requests.
extension ProxyExchange {
    /// The current hold as data (see ``HeldExchangeRecord``), with the client at `positions`; nil when not held.
    func holdRecord(positions: [String: HoldPosition]) -> HeldExchangeRecord? {
        guard let held = self.hold, let route = self.route else { return nil }
        return HeldExchangeRecord(
            requestHead: self.requestHead,
            routeID: route.hasExplicitID ? route.id : nil,
            instruct: held.instruct,
            positions: positions,
            nextLink: held.nextLink?.uri,
            nextLinkThroughRoute: held.nextLink.map { $0.target.directTarget == nil } ?? false,
            goneLink: held.goneLink?.uri,
            goneLinkThroughRoute: held.goneLink.map { $0.directTarget == nil } ?? false,
            generation: held.generation,
            responseHeadWritten: self.holds.streamStarted,
            bodyBytesWritten: held.pacing.bytesWritten,
            requestComplete: self.requestComplete,
            timeoutAt: held.timeoutAt,
            record: held.session.map { HoldRecordIdentity(id: $0.id, startedAt: $0.startedAt) }
        )
    }

    /// Starts holding the client as `instruct` says (also for a next link's answer that holds again, and for a
    /// hold taken over from an earlier server: `resuming`).
    func beginHold(_ instruct: Instruct, resuming: HoldResumption? = nil) {
        guard let route = self.route else { return }
        var base = LinkTarget.baseURI(of: self.requestHead, originForm: self.originForm)
        if case .nextLink(let link, _) = self.requestKind {
            base = link.uri
        }
        var nextLink = instruct.nextLink.flatMap { link in base.flatMap { NextLink.resolve(link, against: $0) } }
        // A next link's answer that names no gone link keeps the one the hold had.
        var goneLink =
            instruct.goneLink.flatMap { link in base.flatMap { LinkTarget.resolve(link, against: $0) } }
            ?? self.hold?.goneLink
        if let resuming {
            nextLink = resuming.nextLink
            goneLink = resuming.goneLink
        }
        if self.client.inputClosed {
            // The client sent FIN before the backend said to hold: held clients that do so have gone.
            self.endHold()
            self.sendGoneCallback(goneLink)
            self.client.abortConnection()
            return
        }
        var instruct = instruct
        do {
            instruct.response.body = try Self.filteredInitialBody(instruct)
        } catch {
            self.logger.info("hold refused by a content filter", metadata: ["error": "\(error.message)"])
            if self.holds.streamStarted {
                self.endStream(debugMessage: "filter error: \(error.message)")
            } else {
                self.endHold()
                self.sendErrorResponse(self.isDebug ? .filterError("filter error: \(error.message)") : .originError)
            }
            return
        }
        self.endHold()
        let generation = self.holds.begin(
            mode: instruct.holdMode,
            response: instruct.response,
            idleKeepAlive: instruct.keepAlive?.mode == .idle
        )
        let held = HeldExchange(generation: generation, instruct: instruct, nextLink: nextLink, goneLink: goneLink)
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
                filters: channel.filters,
                resume: resuming?.positions[route.prefix + channel.name]
            )
        }
        let isEventStream = instruct.response.headers.contains { field in
            field.hasName("Content-Type") && field.value.lowercased().hasPrefix("text/event-stream")
        }
        if instruct.holdMode == .stream, route.resumeLastEventID, resuming == nil,
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
        let timeoutAt = instruct.holdMode == .response ? Date().addingTimeInterval(Double(instruct.timeout)) : nil
        held.timeoutAt = timeoutAt
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
            links: Self.recordedLinks(next: nextLink, gone: goneLink),
            timeoutAt: timeoutAt,
            record: resuming?.record
        )
        self.releaseBackendWhileHeld()
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

    /// The hub's decision for the hold of `generation`.
    func holdDecided(_ decision: HoldDecision, generation: Int) {
        switch decision {
        case .hold(let session, let resetChannels):
            self.carryOut(self.holds.decided(.hold(resetChannels: resetChannels), generation: generation), session)
        case .reset(let channels):
            self.carryOut(self.holds.decided(.reset(channels: channels), generation: generation))
        case .recover(let gripLast):
            self.carryOut(self.holds.decided(.recover(gripLast), generation: generation))
        }
    }

    /// Carries out the hold's decisions, in order; `session` is the one the hub's decision brought.
    private func carryOut(_ actions: [HoldStateMachine.Action], _ session: HoldSession? = nil) {
        let held = self.hold
        for action in actions {
            switch action {
            case .endHold:
                self.endHold()
            case .discardSession:
                session?.end()
            case .keepSession:
                guard let held else { continue }
                held.session = session
                held.countedAsHeld = self.engine.metrics != nil
                self.engine.metrics?.holdChanged(stream: held.instruct.holdMode == .stream, opened: true)
            case .activateSession:
                session?.activate()
            case .armResponseTimeout:
                guard let held else { continue }
                let generation = held.generation
                held.timeout = self.eventLoop.assumeIsolated().scheduleTask(
                    in: .seconds(Int64(held.instruct.timeout))
                ) {
                    self.carryOut(self.holds.timedOut(generation: generation))
                }
            case .startStream(let response, let resetChannels):
                self.startStream(response, resetChannels: resetChannels)
            case .armKeepAlive:
                if let held, self.hold === held {
                    self.armKeepAlive(held)
                }
            case .armLinkTimer:
                if let held, self.hold === held {
                    self.armLinkTimer(held)
                }
            case .respond(let response, let resetChannels):
                self.respond(with: response, resetChannels: resetChannels)
            case .respondFilterError(let message):
                self.sendErrorResponse(self.isDebug ? .filterError(message) : .originError)
            case .endStream(let debugMessage):
                self.endStream(debugMessage: debugMessage)
            case .retryRequest(let gripLast):
                self.startBackendRequest(.retry(gripLast))
            case .fetchNextLink(let gripLast):
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

    /// A publish released the long-poll.
    func heldResponse(_ response: Instruct.Response, generation: Int) {
        self.carryOut(self.holds.released(response, generation: generation))
    }

    // MARK: - Streams

    /// Sends a stream's head (once per client response) and then `response`'s body.
    private func startStream(_ response: Instruct.Response, resetChannels: [String]) {
        if !self.holds.streamStarted {
            self.holds.streamStarted = true
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
            self.hold?.pacing.wrote(response.body.count)
        }
        self.client.flush()
    }

    /// Published content for the stream.
    func heldStreamContent(_ content: [UInt8], generation: Int) {
        guard let rearmKeepAlive = self.holds.content(generation: generation), let held = self.hold else { return }
        self.writeToStream(content, held)
        guard self.hold === held else { return }
        if rearmKeepAlive {
            self.armKeepAlive(held)
        }
        self.armLinkTimer(held)
    }

    private func writeToStream(_ content: [UInt8], _ held: HeldExchange) {
        self.client.writeBody(SharedContent.buffer(content))
        self.client.flush()
        if held.pacing.wrote(content.count, clientWritable: self.client.isWritable) {
            // Debug, as for WebSockets: when a network goes, thousands are cut at once, and a line each (written
            // on the event loop) delays the clients still served. p8_slow_clients_disconnected_total counts them.
            self.logger.debug("stream client too slow: disconnected")
            self.engine.metrics?.slowClientDisconnected(transport: "http-stream")
            self.clientLeftHold()
            self.client.abortConnection()
        }
    }

    /// A content filter failed: a long-poll answers 502, a stream ends (grip-spec §3.7).
    func heldFilterFailed(_ message: String, generation: Int) {
        self.carryOut(self.holds.filterFailed(message, generation: generation))
    }

    /// A published `close` action.
    func heldStreamEnded(generation: Int) {
        self.carryOut(self.holds.streamClosed(generation: generation))
    }

    /// Ends the stream cleanly, with a debug message first when the route has `debug` on.
    func endStream(debugMessage: String?) {
        guard self.holds.streamStarted else {
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
        let delay = HoldPacing.keepAliveDelay(periodSeconds: keepAlive.timeout, jitter: Double.random(in: 0..<1))
        held.keepAlive = self.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard self.hold === held else { return }
            self.writeToStream(keepAlive.data, held)
            if self.hold === held {
                self.armKeepAlive(held)
            }
        }
    }

    // MARK: - Recovery

    /// The publish side asks the backend to fill a gap.
    func heldRecover(_ gripLast: [GripLast], generation: Int) {
        self.carryOut(self.holds.recover(gripLast, generation: generation))
    }

    // MARK: - Ending

    /// Ends the hold: timers stop and the publish side forgets the client. Safe to call when not held.
    func endHold() {
        guard let held = self.hold else { return }
        self.hold = nil
        self.holds.end()
        if held.countedAsHeld {
            self.engine.metrics?.holdChanged(stream: held.instruct.holdMode == .stream, opened: false)
        }
        held.cancelTimers()
        held.session?.end()
    }

    /// The server is shutting down: a long-poll gets its timeout response now (it polls again, as after any
    /// timeout), a stream ends cleanly, and its backend hears through the gone link that the client was
    /// disconnected.
    func quiesce() {
        if let held = self.hold, held.instruct.holdMode == .stream {
            self.sendGoneCallback(held.goneLink)
        }
        self.carryOut(self.holds.quiesce(backendRequestFinished: self.finished))
    }
}
