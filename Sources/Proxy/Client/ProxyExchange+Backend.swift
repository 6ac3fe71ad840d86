import GRIP
import Logging
import NIOCore
import NIOHTTP1
import Publish

/// Connecting each backend request of an exchange (through ``BackendExchange``) and the backend's events.
extension ProxyExchange: BackendExchangeDelegate {

    /// Sends the current backend request (``requestKind``) through ``BackendExchange``, from the first target.
    func sendBackendRequest() {
        guard let route = self.route else { return }
        var request = BackendRequest(
            clientHead: self.requestHead,
            originForm: self.originForm,
            route: route,
            targets: route.targets,
            clientAddress: self.client.remoteAddressText,
            clientIsTLS: self.client.isTLS,
            trusted: self.trusted
        )
        var gripLast: [GripLast] = []
        switch self.requestKind {
        case .original:
            break
        case .retry(let channels):
            gripLast = channels
        case .nextLink(let link, let channels):
            gripLast = channels
            request.clientHead = link.target.requestHead(method: .GET)
            request.originForm = link.target.originForm
            if let direct = link.target.directTarget {
                // A link to another backend: that one only, no failover.
                request.targets = [direct]
            }
        }
        request.addedHeaders = gripLast.map { (name: "Grip-Last", value: $0.headerValue) }
        self.backendExchange().start(request)
    }

    /// The name a TLS backend's certificate is checked against (see ``BackendKey/tlsServerName(connectHost:target:)``).
    static func tlsServerName(connectHost: String, target: RouteTarget) -> String? {
        BackendKey.tlsServerName(connectHost: connectHost, target: target)
    }

    func backendUnavailable(_ error: any Error) {
        guard !self.finished else { return }
        self.fail(with: .originError)
    }

    func backendConnected(_ connection: BackendConnection) {
        let (body, end) = self.state.backendConnected()
        for part in body {
            connection.write(.body(.byteBuffer(part)))
        }
        if end {
            connection.write(.end(nil))
        }
        connection.flush()
        self.backendRequestSent = .now
        self.client.setReadPaused(!connection.isWritable)
        self.lastBackendActivity = .now()
        self.armTimeout(after: self.engine.responseTimeout)
    }

    /// A reused connection failed before any response byte: the backend probably closed it while it was
    /// idle. Send the request again on a new connection when the whole body is still at hand.
    private func retryOnFreshConnection() -> Bool {
        guard self.backend?.retryOnFreshConnection(replayable: self.state.replayable) == true else { return false }
        self.state.retryingOnFreshConnection()
        self.timeout?.cancel()
        return true
    }

    /// Whether the route or the proxy has `debug` on: error details are shown to the client.
    var isDebug: Bool {
        self.engine.settings.proxy.debug || self.route?.debug == true
    }

    func backendResponsePart(_ part: HTTPClientResponsePart) {
        guard !self.finished else { return }
        self.lastBackendActivity = .now()
        var part = part
        if case .head(var head) = part {
            if let connection = self.connection {
                head.status = connection.wireStatus(head.status)
                part = .head(head)
            }
            if case .waitingForHead = self.state.response {
                self.recordBackendOutcome(status: Int(head.status.code))
            }
        }
        self.shareWithFollowers(part)
        let gripAllowed = !self.trusted && self.route?.noGrip == false
        switch self.state.responsePart(part, gripAllowed: gripAllowed) {
        case .none:
            break
        case .relayHead(let head):
            self.client.writeHead(head)
        case .relayBody(let buffer):
            self.client.writeBody(buffer)
            if !self.client.isWritable {
                self.connection?.isReadPaused = true
            }
        case .completeRelayed(let reuse, let trailers, let keepClient):
            self.finish(reusingConnection: reuse)
            self.client.endResponse(trailers: trailers, keepAlive: keepClient)
        case .endStream(let reuse):
            // A plain next-link response ends the stream (grip-spec §3.6).
            self.finish(reusingConnection: reuse)
            self.endStream(debugMessage: nil)
        case .gripComplete(let head, let body):
            self.gripResponseComplete(head: head, body: body)
        case .fail(let error):
            self.logger.debug("backend response refused", metadata: ["error": "\(error)"])
            self.fail(with: error)
        }
    }

    /// Counts the current backend request's outcome once: its status, or nil when it got no response.
    func recordBackendOutcome(status: Int?) {
        guard let metrics = self.engine.metrics, let route = self.route, !self.backendOutcomeRecorded else { return }
        self.backendOutcomeRecorded = true
        let sent = self.backendRequestSent
        metrics.backendRequestEnded(route: route.id, status: status, after: sent.map { .now - $0 })
    }

    func backendReadComplete() {
        for follower in self.followers {
            follower.readComplete()
        }
        if self.state.isPassingBodyOn {
            self.client.flush()
        }
    }

    func backendWritabilityChanged(isWritable: Bool) {
        self.client.setReadPaused(!isWritable)
    }

    func backendFailed(_ error: any Error) {
        self.logger.debug("backend connection failed", metadata: ["error": "\(error)"])
        self.backendClosed()
    }

    func backendClosed() {
        guard !self.finished else { return }
        if self.retryOnFreshConnection() {
            return
        }
        self.backend?.finish(reusingConnection: false)
        self.carryOut(self.state.backendClosed())
    }
}
