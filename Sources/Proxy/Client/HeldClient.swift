import GRIP
import NIOCore
import Publish

/// The ``HeldConnection`` the publish side talks to for one hold of an exchange: each call hops to the client
/// connection's event loop. Calls for a hold that has since ended (its `generation` is gone) are ignored there.
final class HeldClient: HeldConnection {
    private let exchange: NIOLoopBound<ProxyExchange>
    private let eventLoop: any EventLoop
    private let generation: Int

    init(exchange: ProxyExchange, generation: Int) {
        self.eventLoop = exchange.eventLoop
        self.exchange = NIOLoopBound(exchange, eventLoop: exchange.eventLoop)
        self.generation = generation
    }

    /// Hands the hub's decision to the exchange.
    func decided(_ decision: HoldDecision) {
        let (exchange, generation) = (self.exchange, self.generation)
        self.eventLoop.execute { exchange.value.holdDecided(decision, generation: generation) }
    }

    func sendResponse(_ response: Instruct.Response) {
        let (exchange, generation) = (self.exchange, self.generation)
        self.eventLoop.execute { exchange.value.heldResponse(response, generation: generation) }
    }

    func sendStreamContent(_ content: [UInt8]) {
        let (exchange, generation) = (self.exchange, self.generation)
        self.eventLoop.execute { exchange.value.heldStreamContent(content, generation: generation) }
    }

    func endStream() {
        let (exchange, generation) = (self.exchange, self.generation)
        self.eventLoop.execute { exchange.value.heldStreamEnded(generation: generation) }
    }

    func recover(gripLast: [GripLast]) {
        let (exchange, generation) = (self.exchange, self.generation)
        self.eventLoop.execute { exchange.value.heldRecover(gripLast, generation: generation) }
    }

    func filterFailed(_ message: String) {
        let (exchange, generation) = (self.exchange, self.generation)
        self.eventLoop.execute { exchange.value.heldFilterFailed(message, generation: generation) }
    }
}
