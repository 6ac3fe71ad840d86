import GRIP
import NIOCore
import Publish

/// The ``WebSocketConnection`` the publish side talks to for one client WebSocket: each call hops to the
/// connection's event loop, in order.
final class HeldWebSocket: WebSocketConnection {
    private let grip: NIOLoopBound<WebSocketGrip>
    private let eventLoop: any EventLoop

    init(grip: WebSocketGrip, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.grip = NIOLoopBound(grip, eventLoop: eventLoop)
    }

    func sendMessage(type: WSMessageFormat.MessageType, content: [UInt8]) {
        let grip = self.grip
        self.eventLoop.execute { grip.value.publishedMessage(type: type, content: content) }
    }

    func close(code: UInt16?, reason: String) {
        let grip = self.grip
        self.eventLoop.execute { grip.value.publishedClose(code: code, reason: reason) }
    }

    func sendReset(channel: String) {
        let grip = self.grip
        self.eventLoop.execute { grip.value.sendReset(channel: channel) }
    }

    func refresh() {
        let grip = self.grip
        self.eventLoop.execute { grip.value.owner?.gripRefresh() }
    }
}
