import NIOCore

/// A hand-over, connection by connection (see ``ProxyServer/handOver(over:)``): reads are held, and a connection
/// waiting for its next request is passed to the new server, which serves that request.
extension ControlRequestHandler {
    /// No new request is read from now on (a request already being read goes on, and is answered).
    func holdReadsForHandover() {
        self.readsHeldForHandover = true
    }

    /// Whether the connection can go now: only between requests, with nothing of a next one read.
    func handOver() -> HandoverOutcome {
        guard self.context != nil else { return .stays }
        switch self.state {
        case .idle where self.queued.isEmpty && !self.inputClosed:
            // Bytes read since the last request ended are a request not yet parsed whole: it is being read.
            guard self.readCounter.reads == self.readsAtRequestEnd else { return .busy }
            return .handedOver(HandedOverConnection(publishAPI: true))
        case .reading, .answering:
            return .busy
        case .idle, .streaming, .draining, .closed:
            // Pipelined requests, a client that shut down its side, the status stream: ended as in a shutdown.
            return .stays
        }
    }

    /// The connection was handed over: this side closes quietly (the socket lives on in the new server).
    func detachForHandover() {
        self.context?.close(promise: nil)
    }

    /// Reads resume on a connection the hand-over left here (the server then shuts down as usual).
    func releaseReadsAfterHandover() {
        guard self.readsHeldForHandover, let context = self.context else { return }
        self.readsHeldForHandover = false
        self.resumeReading(context: context)
    }
}
