import Foundation
import GRIP
import Logging
import NIOCore
import NIOHTTP1

/// A client's WebSocket handshake and what both modes (``WebSocketOverHTTP``, ``WebSocketPassthrough``) need to
/// answer it: the request, its route, whether it came signed by a trusted upstream, and the client's connection.
/// Also the two things both modes do the same way: the backend request head, and relaying a refused handshake.
///
/// Lives on the client connection's event loop.
struct WebSocketClientHandshake {
    /// Largest body of a refused handshake relayed to the client (grip-spec §7.1).
    static let maxRejectionBody = 100_000

    /// The client's connection, until it goes away.
    weak var client: ClientConnectionHandler?
    /// Whether the client connected over TLS.
    let clientIsTLS: Bool
    let clientAddress: String?
    let engine: ProxyEngine
    let pool: BackendConnectionPool
    let requestHead: HTTPRequestHead
    let route: Route
    let originForm: String
    /// The request carries a valid `Grip-Sig` from an upstream proxy: GRIP is that proxy's business.
    let trusted: Bool
    let eventLoop: any EventLoop
    var logger: Logger

    init(
        client: ClientConnectionHandler,
        engine: ProxyEngine,
        pool: BackendConnectionPool,
        requestHead: HTTPRequestHead,
        route: Route,
        originForm: String,
        logger: Logger
    ) {
        self.client = client
        self.clientIsTLS = client.isTLS
        self.clientAddress = client.remoteAddressText
        self.engine = engine
        self.pool = pool
        self.requestHead = requestHead
        self.route = route
        self.originForm = originForm
        self.eventLoop = client.eventLoop
        self.trusted = engine.requestBuilder.isTrusted(requestHead, now: ProxyClock.unixSeconds())
        self.logger = logger
    }

    /// Largest WebSocket frame taken from either side.
    var maxFrameBytes: Int { self.engine.settings.proxy.webSocketMaxFrameBytes }

    /// Whether the backend is offered the GRIP extension (grip-spec §7.1): not behind a trusted upstream proxy,
    /// nor on a `no_grip` route.
    var offersGrip: Bool { !self.trusted && !self.route.noGrip }

    /// The backend request for the client's head as `method`, without the headers `removing` names, rewritten
    /// as for any request (grip-spec §2.5), then `addingFirst`, `Sec-WebSocket-Extensions: grip` when
    /// ``offersGrip``, and `adding`.
    func backendRequest(
        method: HTTPMethod? = nil,
        removing removed: (_ lowercasedName: String) -> Bool,
        addingFirst first: [(name: String, value: String)] = [],
        adding added: [(name: String, value: String)] = []
    ) -> BackendRequest {
        var client = self.requestHead
        if let method {
            client.method = method
        }
        for name in Set(client.headers.map { $0.name.lowercased() }) where removed(name) {
            client.headers.remove(name: name)
        }
        let grip = self.offersGrip ? [(name: "Sec-WebSocket-Extensions", value: "grip")] : []
        return BackendRequest(
            clientHead: client,
            originForm: self.originForm,
            route: self.route,
            targets: self.route.targets,
            clientAddress: self.clientAddress,
            clientIsTLS: self.clientIsTLS,
            trusted: self.trusted,
            addedHeaders: first + grip + added
        )
    }

    /// The component that connects this handshake's backend requests (target, failover, fresh retry).
    func backendExchange(mode: BackendExchange.Mode, delegate: any BackendExchangeDelegate) -> BackendExchange {
        let exchange = BackendExchange(
            pool: self.pool,
            requestBuilder: self.engine.requestBuilder,
            mode: mode,
            logger: self.logger
        )
        exchange.delegate = delegate
        return exchange
    }

    /// The handshake failed before the upgrade: the client gets `502`.
    func respondBadGateway() {
        self.client?.respond(with: .originError, version: self.requestHead.version, keepAlive: false)
    }

    /// The backend refused the handshake: the client gets its response without the hop-by-hop headers.
    func relayRefusal(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        var headers = headers
        HopByHopHeaders.remove(from: &headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        self.client?.respond(
            head: HTTPResponseHead(version: self.requestHead.version, status: status, headers: headers),
            body: body,
            keepAlive: false
        )
    }

    /// The handler of an upgraded connection, facing the client (`.server`) or a passthrough's backend.
    func frameHandler(role: WebSocketFrameHandler.Role, answersPings: Bool) -> WebSocketFrameHandler {
        WebSocketFrameHandler(
            engine: self.engine,
            role: role,
            answersPings: answersPings,
            maxMessageBytes: self.engine.settings.proxy.webSocketMaxMessageBytes
        )
    }

    /// The GRIP side of the upgraded client, on `frames`, GRIP on when the backend's `extensions` name it.
    func grip(
        connectionID: String? = nil,
        startedAt: Date? = nil,
        extensions: [String],
        frames: WebSocketFrameHandler,
        owner: any WebSocketGripOwner
    ) -> WebSocketGrip {
        let grip = WebSocketGrip(
            connectionID: connectionID,
            startedAt: startedAt,
            extensions: extensions,
            enabled: self.offersGrip,
            route: self.route,
            engine: self.engine,
            clientAddress: self.clientAddress,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
        grip.client = frames
        grip.owner = owner
        return grip
    }

    /// Answers the client `101` with `headers` and moves its connection to WebSocket framing through `frames`.
    func upgradeClient(headers: HTTPHeaders, frames: WebSocketFrameHandler) {
        self.client?.upgradeToWebSocket(
            HTTPResponseHead(version: self.requestHead.version, status: .switchingProtocols, headers: headers),
            frames: frames,
            maxFrameBytes: self.maxFrameBytes
        )
    }
}
