import GRIP
import NIOCore
import Publish

/// The ``WebSocketConnection`` the publish side talks to for one client WebSocket: each call hops to the
/// connection's event loop, in order.
final class HeldWebSocket: WebSocketConnection {
    private let gateway: NIOLoopBound<WebSocketOverHTTP>
    private let eventLoop: any EventLoop

    init(gateway: WebSocketOverHTTP, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.gateway = NIOLoopBound(gateway, eventLoop: eventLoop)
    }

    func sendMessage(type: WSMessageFormat.MessageType, content: [UInt8]) {
        let gateway = self.gateway
        self.eventLoop.execute { gateway.value.publishedMessage(type: type, content: content) }
    }

    func close(code: UInt16?, reason: String) {
        let gateway = self.gateway
        self.eventLoop.execute { gateway.value.publishedClose(code: code, reason: reason) }
    }

    func sendReset(channel: String) {
        let gateway = self.gateway
        self.eventLoop.execute { gateway.value.sendReset(channel: channel) }
    }
}
