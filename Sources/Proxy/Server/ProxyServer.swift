package import Foundation
package import GRIP
package import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
package import Publish
import ServiceLifecycle
import Synchronization

/// The client-facing HTTP proxy: listens on the configured ports and forwards each request to its route's
/// backend. Runs until graceful shutdown, then stops accepting, lets responses in flight finish for the grace
/// period, ends the rest, and returns when every client connection is closed.
package final class ProxyServer: Service {
    let engine: ProxyEngine
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    private let onListening: @Sendable (_ http: [ListenAddress], _ https: [ListenAddress]) -> Void
    let clients = ConnectionRegistry()
    private let tls: TLSIdentities?
    private let owedGoneCallbacks: [OwedGoneCallback]
    /// Connections an earlier server handed over, taken over once listening.
    let takenOver: Mutex<[TakenOverConnection]>
    /// The listeners, once bound (a hand-over closes them).
    let listeners = Mutex<[any Channel]>([])
    /// The publish API, whose idle connections a hand-over passes too.
    let control: ControlServer?

    /// - Parameters:
    ///   - tls: the certificates of ``ProxySettings/tlsListeners`` (needed when there are any).
    ///   - owedGoneCallbacks: the gone callbacks an earlier server owed when it died, sent once listening.
    ///   - takenOver: the client connections an earlier server handed over, continued once listening.
    ///   - control: the publish API: its connections are handed over and taken over with the clients'.
    ///   - onListening: called once every listener is bound, with the bound plain and TLS addresses (port 0
    ///     resolved).
    package init(
        settings: ProxySettings,
        routes: RouteTableBox,
        hub: PublishHub,
        tls: TLSIdentities? = nil,
        owedGoneCallbacks: [OwedGoneCallback] = [],
        takenOver: [TakenOverConnection] = [],
        control: ControlServer? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (_ http: [ListenAddress], _ https: [ListenAddress]) -> Void
    ) {
        // The sockets an earlier server handed over are open already; they are counted as they are taken over.
        self.engine = ProxyEngine(
            settings: settings,
            routes: routes,
            hub: hub,
            descriptors: DescriptorBudget.forThisProcess(notCounting: takenOver.count)
        )
        self.group = .singleton
        self.tls = tls
        self.owedGoneCallbacks = owedGoneCallbacks
        self.takenOver = Mutex(takenOver)
        self.control = control
        self.logger = logger
        self.onListening = onListening
    }

    package func run() async throws {
        let pools = BackendPools(
            group: self.group,
            descriptors: self.engine.descriptors,
            connectTimeout: .seconds(Int64(self.engine.settings.proxy.backendConnectTimeout)),
            logger: self.logger
        )
        var listeners: [any Channel] = []
        var tlsListeners: [any Channel] = []
        do {
            for (index, address) in self.engine.settings.listeners.enumerated() {
                listeners.append(try await self.bind(address, role: "http.\(index)", pools: pools, tls: nil))
            }
            for (index, address) in self.engine.settings.tlsListeners.enumerated() {
                guard let tls = self.tls else {
                    throw TLSListenerError("https port \(address) configured without certificates")
                }
                tlsListeners.append(
                    try await self.bind(address, role: "https.\(index)", pools: pools, tls: (tls, address.port))
                )
            }
        } catch {
            for listener in listeners + tlsListeners {
                try? await listener.close()
            }
            throw error
        }
        let bound = listeners.compactMap(Self.boundAddress)
        let tlsBound = tlsListeners.compactMap(Self.boundAddress)
        self.logger.info(
            "proxy listening",
            metadata: ["p8.listen": "\(bound.map(\.description))", "p8.listen.tls": "\(tlsBound.map(\.description))"]
        )
        self.onListening(bound, tlsBound)
        listeners += tlsListeners
        self.listeners.withLock { $0 = listeners }
        self.takeOverConnections(pools)
        self.sendOwedGoneCallbacks(pools)

        try? await gracefulShutdown()

        // Stop accepting, then let each connection finish its response in flight (idle ones close now).
        for listener in listeners {
            try? await listener.close()
        }
        // A cancelled run (not a graceful shutdown) skips the grace period.
        if !Task.isCancelled {
            self.clients.broadcast(ChannelShouldQuiesceEvent())
            let grace = Duration.seconds(self.engine.settings.shutdownGracePeriodSeconds)
            await self.clients.waitUntilEmpty(timeout: grace)
        }
        self.clients.broadcast(ProxyShutdownDeadlineEvent())
        await self.clients.waitUntilEmpty(timeout: .seconds(2))
        // The gone callbacks of the streams the shutdown ended get a moment to reach their backends.
        await Self.waitUntil(timeout: .seconds(2)) { self.engine.goneCallbacks.isEmpty }
        await pools.closeAll()
    }

    /// Sends the gone callbacks an earlier server owed: through the route the hold came by (by its id, else the
    /// one that routes the link's host and path now), or straight to the link's host when it named another.
    private func sendOwedGoneCallbacks(_ pools: BackendPools) {
        guard !self.owedGoneCallbacks.isEmpty else { return }
        let routes = self.engine.routes.current
        var unroutable = 0
        for owed in self.owedGoneCallbacks {
            let route =
                owed.routeID.flatMap { routes.route(id: $0) }
                ?? routes.route(
                    host: owed.uri.host ?? "",
                    path: owed.uri.path.isEmpty ? "/" : owed.uri.path,
                    isTLS: owed.uri.scheme?.lowercased() == "https",
                    isWebSocket: false
                )
            guard let route, let link = LinkTarget(uri: owed.uri, throughRoute: owed.throughRoute) else {
                unroutable += 1
                continue
            }
            let eventLoop = self.group.next()
            let engine = self.engine
            let logger = self.logger
            eventLoop.execute {
                GoneCallback.send(
                    link,
                    route: route,
                    engine: engine,
                    pool: pools.pool(for: eventLoop),
                    eventLoop: eventLoop,
                    logger: logger
                )
            }
        }
        self.logger.info(
            "gone callbacks owed by an earlier run sent",
            metadata: [
                "p8.gone.sent": "\(self.owedGoneCallbacks.count - unroutable)", "p8.gone.unroutable": "\(unroutable)",
            ]
        )
    }

    /// Waits until `condition` holds, at most `timeout`, looking every 20 ms (this runs once, at shutdown).
    static func waitUntil(timeout: Duration, _ condition: @Sendable () -> Bool) async {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline, !condition() {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .milliseconds(20)) {
                    continuation.resume()
                }
            }
        }
    }

    /// Bytes not yet sent that the kernel queues for one client (`TCP_NOTSENT_LOWAT`). Without a bound, the
    /// kernel's autotuned send buffer takes megabytes for a client that stopped reading (2.8 MB on loopback): the
    /// event loop copies all of it into the socket, delaying every other client on the loop, and thousands of such
    /// clients exhaust the system's TCP memory. Bounded, a stalled client holds this much in the kernel (plus what
    /// is in flight), the rest waits in its write queue, shared with the others (``SharedContent``), until it is
    /// cut at its limit. Clients that read are unaffected: the kernel still keeps a window in flight and asks for
    /// more as soon as fewer bytes than this are unsent.
    static let maxUnsentKernelBytes: SocketOptionValue = 128 * 1024
    /// How a client connection's reads are sized. Each connection keeps its last receive buffer for the next read,
    /// for its whole life, so its starting size is paid by every held request. NIO starts at 2 KB; 1 KB, nginx's
    /// `client_header_buffer_size`, holds a typical request head, and the buffer grows after a read that fills it.
    static let clientReceiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)
    #if canImport(Darwin)
    private static let tcpNotSentLowWaterMark = NIOBSDSocket.Option(rawValue: 0x201)
    #else
    private static let tcpNotSentLowWaterMark = NIOBSDSocket.Option(rawValue: 25)  // TCP_NOTSENT_LOWAT
    #endif

    private static func boundAddress(_ channel: any Channel) -> ListenAddress? {
        guard let address = channel.localAddress, let port = address.port else { return nil }
        return ListenAddress(host: address.ipAddress ?? "0.0.0.0", port: port)
    }

    /// Binds a client listener; with `tls`, connections speak TLS with that store's certificates for the
    /// configured port (a port 0 listener uses `default_0`). Adopts the runner's socket for `role` if it passed one.
    private func bind(
        _ address: ListenAddress,
        role: String,
        pools: BackendPools,
        tls: (identities: TLSIdentities, port: Int)?
    ) async throws -> any Channel {
        let context = try tls.map { try $0.identities.serverContext(port: $0.port) }
        let engine = self.engine
        let logger = self.logger
        return try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.tcpOption(Self.tcpNotSentLowWaterMark), value: Self.maxUnsentKernelBytes)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: Self.clientReceiveBuffers)
            // A client that half-closes after its request still gets the answer (see ClientConnectionHandler).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                guard engine.openConnectionCount < engine.settings.maxConnections else {
                    logger.debug("client_maxconn reached: connection refused")
                    return channel.close()
                }
                let descriptors = engine.descriptors
                guard descriptors.take() else {
                    if descriptors.refusalWorthLogging() {
                        logger.warning(
                            "near the descriptor limit: client connections refused",
                            metadata: [
                                "p8.fd.limit": "\(descriptors.limit)", "p8.fd.refused": "\(descriptors.refusals)",
                            ]
                        )
                    }
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in descriptors.give() }
                return channel.eventLoop.makeCompletedFuture {
                    _ = try self.initializeClient(channel, tls: context, pools: pools)
                }
            }
            .bind(address, role: role)
            .get()
    }

    /// Sets up a client connection's pipeline: TLS when `tls`, NIO's HTTP/1 server codec, then our handler.
    func initializeClient(
        _ channel: any Channel,
        tls context: NIOSSLContext?,
        pools: BackendPools
    ) throws -> ClientConnectionHandler {
        self.clients.add(channel)
        let counter = ClientReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        if let context {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = self.engine.settings.maxRequestHeadBytes
        limits.maxHeaderFieldSize = self.engine.settings.maxRequestHeadBytes
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withPipeliningAssistance: false,
            // No upgraders (ClientConnectionHandler does WebSocket upgrades itself): this only makes the
            // request decoder keep the bytes after an upgrade request, so that frames a client sends
            // before its 101 reach the WebSocket once it is upgraded.
            withServerUpgrade: (upgraders: [], completionHandler: { _ in }),
            withErrorHandling: false,
            withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
            withDecoderLimitConfiguration: limits
        )
        let handler = ClientConnectionHandler(
            engine: self.engine,
            pool: pools.pool(for: channel.eventLoop),
            isTLS: context != nil,
            readCounter: counter,
            logger: self.logger
        )
        try channel.pipeline.syncOperations.addHandler(handler)
        return handler
    }
}

/// A gone callback that a server which died owed: its hold's record outlived it.
package struct OwedGoneCallback: Sendable {
    /// The gone link, absolute.
    package var uri: URL
    /// Whether it goes through the hold's route (else straight to its host).
    package var throughRoute: Bool
    /// The id of the route the hold came through, when the route has one.
    package var routeID: String?

    package init(uri: URL, throughRoute: Bool, routeID: String?) {
        self.uri = uri
        self.throughRoute = throughRoute
        self.routeID = routeID
    }
}

/// One ``BackendConnectionPool`` per event loop of the group.
final class BackendPools: Sendable {
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<BackendConnectionPool>]

    init(
        group: MultiThreadedEventLoopGroup,
        descriptors: DescriptorBudget,
        connectTimeout: TimeAmount,
        logger: Logger
    ) {
        var pools: [ObjectIdentifier: NIOLoopBoundBox<BackendConnectionPool>] = [:]
        for eventLoop in group.makeIterator() {
            pools[ObjectIdentifier(eventLoop)] = NIOLoopBoundBox.makeBoxSendingValue(
                BackendConnectionPool(
                    eventLoop: eventLoop,
                    descriptors: descriptors,
                    connectTimeout: connectTimeout,
                    logger: logger
                ),
                eventLoop: eventLoop
            )
        }
        self.pools = pools
    }

    /// The pool of `eventLoop`; must be called on that loop.
    func pool(for eventLoop: any EventLoop) -> BackendConnectionPool {
        self.pools[ObjectIdentifier(eventLoop)]!.value
    }

    func closeAll() async {
        for bound in self.pools.values {
            try? await bound.eventLoop.submit { bound.value.closeAll() }.get()
        }
    }
}

/// The open client connections, so shutdown can reach each of them.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        self.channels.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { _ in
            _ = self.channels.withLock { $0.removeValue(forKey: id) }
        }
    }

    var all: [any Channel] {
        self.channels.withLock { Array($0.values) }
    }

    func broadcast(_ event: any Sendable) {
        for channel in self.channels.withLock({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(event)
        }
    }

    /// Waits until every connection closed, at most `timeout`. The wait ignores cancellation, so a cancelled
    /// shutdown still waits for the closes.
    func waitUntilEmpty(timeout: Duration) async {
        await ProxyServer.waitUntil(timeout: timeout) { self.channels.withLock { $0.isEmpty } }
    }
}
