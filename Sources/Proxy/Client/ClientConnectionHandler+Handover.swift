import GRIP
import NIOCore
import NIOHTTP1

/// A client connection as the server that takes it over needs it, besides its socket: nothing for an idle
/// keep-alive connection (the next request is the client's), else the hold it is in, its WebSocket, or a request
/// to send again; or that it is a publish API connection (idle too).
struct HandedOverConnection: Codable, Sendable {
    var hold: HeldExchangeRecord?
    var webSocket: WebSocketHandoverRecord?
    /// A request whose backend had not answered: the new server handles it as if just read.
    var replay: RequestHeadRecord?
    var publishAPI: Bool?
}

/// What one attempt at handing a connection over came to.
enum HandoverOutcome {
    /// Ready to go: nothing more is decided for it; once what it was sent is flushed, the caller passes its socket
    /// and closes this side (``ClientConnectionHandler/detachForHandover()``).
    case handedOver(HandedOverConnection)
    /// Not now: a request is being read or answered (a later attempt may hand it over).
    case busy
    /// Never: TLS, a passthrough WebSocket, a JSON-P or CORS response, pipelined requests.
    case stays
}

/// A hand-over, connection by connection (see ``ProxyServer/handOver(over:)``): stop reading new requests, hand
/// the connection over when it is idle or held, and on the new server take it over.
extension ClientConnectionHandler {
    /// No new request is read from now on (a request already being read goes on).
    func holdReadsForHandover() {
        self.readsHeldForHandover = true
    }

    /// Hands the connection over: ends its hold, if any, and gives what the new server needs (once everything
    /// decided for the hold has been queued on this event loop). With `replaying` (the settling time is over), a
    /// request still waiting for its backend's answer goes over too, for the new server to send again, when that
    /// is safe (``ProxyExchange/isReplayableForHandover``).
    func handOver(replaying: Bool, _ completion: @escaping (HandoverOutcome) -> Void) {
        guard self.context != nil, !self.isTLS, self.webSocket == nil, self.state.queuedParts.isEmpty,
            self.crossOrigin == nil
        else {
            completion(.stays)
            return
        }
        // Bytes read since the last request ended are a request not yet parsed whole: it is being read.
        guard (self.readCounter?.reads ?? 0) == self.readsAtRequestEnd else {
            completion(.busy)
            return
        }
        switch self.state.state {
        case .idle:
            completion(.handedOver(HandedOverConnection(hold: nil)))
        case .answering(bodyArriving: false):
            guard let exchange = self.exchange else {
                completion(.busy)
                return
            }
            guard exchange.isHandoverReady else {
                if replaying, exchange.isReplayableForHandover {
                    exchange.abandonForReplay()
                    completion(.handedOver(HandedOverConnection(replay: RequestHeadRecord(exchange.requestHead))))
                } else {
                    completion(.busy)
                }
                return
            }
            exchange.handOverHold { record in
                if let record {
                    completion(.handedOver(HandedOverConnection(hold: record)))
                } else if case .idle = self.state.state, self.crossOrigin == nil {
                    // A publish answered the long-poll meanwhile: the connection waits for its next request.
                    completion(.handedOver(HandedOverConnection(hold: nil)))
                } else {
                    completion(.busy)
                }
            }
        case .answering(bodyArriving: true), .draining:
            completion(.busy)
        case .upgrading, .closed:
            completion(.stays)
        }
    }

    /// The connection was handed over: closing this side of it is no client leaving (the socket lives on in the
    /// new server).
    func detachForHandover() {
        self.exchange = nil
        self.state.aborted()
        self.context?.close(promise: nil)
    }

    /// Reads resume on a connection the hand-over left here (the server then shuts down as usual).
    func releaseReadsAfterHandover() {
        guard self.readsHeldForHandover else { return }
        self.readsHeldForHandover = false
        if self.state.readRequested() {
            self.context?.read()
        }
    }

    /// Takes over a connection an earlier server handed over: an idle one waits for its next request; a held one
    /// continues its hold (a stream's head, already sent, is not sent again). Returns false when the hold cannot
    /// continue here (no route takes it now): the connection is then closed.
    func takeOver(_ connection: HandedOverConnection) -> Bool {
        guard let context = self.context else { return false }
        if let webSocket = connection.webSocket {
            return self.takeOver(webSocket)
        }
        if let replay = connection.replay {
            // As if the client had just sent it (the client sends nothing more before its answer).
            context.pipeline.syncOperations.fireChannelRead(NIOAny(ByteBuffer(bytes: replay.encoded)))
            return true
        }
        guard let record = connection.hold else { return true }
        self.state.takeOverHeldRequest(headWritten: record.responseHeadWritten)
        self.readsAtRequestEnd = self.readCounter?.reads ?? 0
        if record.responseHeadWritten {
            try? context.pipeline.syncOperations.addHandler(ResentHeadDiscarder(), position: .first)
        }
        let exchange = ProxyExchange(
            client: self,
            engine: self.engine,
            pool: self.pool,
            requestHead: record.requestHead,
            logger: self.logger
        )
        self.exchange = exchange
        guard exchange.resumeHold(record) else {
            self.abortConnection()
            return false
        }
        return true
    }
}

extension ClientConnectionHandler {
    /// Continues a WebSocket-over-HTTP connection: routed again (a route that no longer gateways WebSockets over
    /// HTTP closes it), then upgraded at once.
    private func takeOver(_ record: WebSocketHandoverRecord) -> Bool {
        let head = record.request.head
        let target = RequestTarget(uri: head.uri, hostHeader: head.headers.first(name: "host"))
        let routes = self.engine.routes.current
        guard
            let route = record.routeID.flatMap({ routes.route(id: $0) })
                ?? routes.route(host: target.host, path: target.path, isTLS: self.isTLS, isWebSocket: true),
            route.targets.first?.overHTTP == true
        else { return false }
        self.state.webSocketStarted()
        _ = WebSocketOverHTTP.takeOver(record, client: self, route: route, originForm: target.originForm)
        return true
    }
}

/// Counts a client connection's reads; first in its pipeline. A connection is handed over only when no read came
/// after its last request ended: bytes of a next request, read but not yet parsed whole, would be lost.
final class ClientReadCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private(set) var reads = 0
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.reads += 1
        context.fireChannelRead(data)
    }

    /// Calls `completion` once everything written before has reached the socket (an empty write, from the head of
    /// the pipeline, completes in order after them): true, or false when the write fails.
    func afterWrites(_ completion: @escaping (Bool) -> Void) {
        guard let context = self.context else {
            completion(false)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            if case .success = result {
                completion(true)
            } else {
                completion(false)
            }
        }
    }
}

/// On a stream taken over from an earlier server, drops the first bytes the HTTP encoder writes: the response
/// head the client already has. The exchange writes the head again so that the encoder frames the body as it did
/// (chunked or not); it goes no further. First in the pipeline; removes itself.
final class ResentHeadDiscarder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension ClientReadCounter: Sendable {}

@available(*, unavailable)
extension ResentHeadDiscarder: Sendable {}
