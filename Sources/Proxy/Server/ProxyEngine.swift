import GRIP
import Logging
import NIOCore
import Publish
import Synchronization

/// What every client connection shares: settings, the live routes, the request builder, the publish hub that
/// held requests are handed to, and the count of open connections (for graceful shutdown and stats).
final class ProxyEngine: Sendable {
    let settings: ProxySettings
    let routes: RouteTableBox
    let requestBuilder: BackendRequestBuilder
    let hub: PublishHub
    /// Next-link requests in flight, shared by the streams that follow the same link.
    let nextLinkFetches: NextLinkFetches
    /// Gone callbacks in flight (a shutdown lets them leave before it closes the backend connections).
    let goneCallbacks = GoneCallbacksInFlight()
    /// How long the backend may stay silent (before its response head, or between body bytes).
    let responseTimeout: TimeAmount
    /// The exported metrics; nil without a metrics endpoint.
    let metrics: P8Metrics?
    /// The sockets this process holds, kept below its descriptor limit.
    let descriptors: DescriptorBudget
    private let openConnections = Atomic<Int>(0)

    init(settings: ProxySettings, routes: RouteTableBox, hub: PublishHub, descriptors: DescriptorBudget) {
        self.settings = settings
        self.routes = routes
        self.hub = hub
        self.nextLinkFetches = NextLinkFetches(counters: hub.counters)
        self.requestBuilder = BackendRequestBuilder(proxy: settings.proxy, signatures: GripSignatureCache())
        self.responseTimeout = .seconds(Int64(settings.proxy.backendResponseTimeout))
        self.metrics = hub.counters.metrics
        self.descriptors = descriptors
    }

    var openConnectionCount: Int {
        self.openConnections.load(ordering: .relaxed)
    }

    func connectionOpened() {
        self.openConnections.add(1, ordering: .relaxed)
        self.metrics?.connectionOpened()
    }

    func connectionClosed() {
        self.openConnections.subtract(1, ordering: .relaxed)
        self.metrics?.connectionClosed()
    }
}
