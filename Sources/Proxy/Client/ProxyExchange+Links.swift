import Foundation
import GRIP
import NIOCore
import Publish

/// A hold's `Grip-Link`s (grip-spec §3.6): fetching the next link and acting on its answer, and the gone callback
/// when the client leaves while held.
extension ProxyExchange {
    // MARK: - Next links

    /// A stream with a next link fetches it when no item came for the link's timeout.
    func armLinkTimer(_ held: HeldExchange) {
        guard let link = held.nextLink, held.instruct.holdMode == .stream else { return }
        held.linkTimer?.cancel()
        held.linkTimer = self.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(link.timeout))) {
            guard self.hold === held else { return }
            held.session?.recover()
        }
    }

    /// Fetches the current hold's next link; without one, the stream ends.
    func fetchNextLink(gripLast: [GripLast]) {
        guard let held = self.hold, let link = held.nextLink else {
            self.endStream(debugMessage: nil)
            return
        }
        held.session?.end()
        held.session = nil
        held.cancelTimers()
        self.linkAttempts = 0
        self.startBackendRequest(.nextLink(link, gripLast))
    }

    /// A next link answered with GRIP instructions (its body goes to the stream before they take effect).
    func nextLinkAnswered(_ instruct: Instruct) {
        self.linkAttempts = 0
        switch HoldStateMachine.nextLinkAnswered(mode: instruct.holdMode, hasNextLink: instruct.nextLink != nil) {
        case .endStream(let debugMessage):
            self.endStream(debugMessage: debugMessage)
        case .appendAndEnd:
            if !instruct.response.body.isEmpty {
                self.client.writeBody(ByteBuffer(bytes: instruct.response.body))
            }
            self.endStream(debugMessage: nil)
        case .holdAgain:
            self.beginHold(instruct)
        }
    }

    /// A next link could not be fetched (connection error, timeout, non-2xx): try again with back-off
    /// (1, 2, 4, 8, 16 s, plus up to a second), then end the stream.
    func nextLinkFailed() {
        guard let held = self.hold else { return }
        self.linkAttempts += 1
        guard let delay = HoldPacing.linkRetryDelay(attempts: self.linkAttempts, jitter: Double.random(in: 0..<1))
        else {
            self.endStream(debugMessage: "Failed to retrieve next link.")
            return
        }
        let kind = self.requestKind
        held.linkRetry = self.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            guard self.hold === held else { return }
            self.startBackendRequest(kind)
        }
    }

    // MARK: - Gone links

    /// The client went away while held (or was cut as too slow): the hold ends, and the backend hears of it
    /// through the hold's gone link.
    func clientLeftHold() {
        let goneLink = self.hold?.goneLink
        self.endHold()
        self.sendGoneCallback(goneLink)
    }

    func sendGoneCallback(_ link: LinkTarget?) {
        guard let link, let route = self.route else { return }
        GoneCallback.send(
            link,
            route: route,
            engine: self.engine,
            pool: self.pool,
            eventLoop: self.eventLoop,
            logger: self.logger
        )
    }

    /// The links as the held-request record keeps them; nil without any.
    static func recordedLinks(next: NextLink?, gone: LinkTarget?) -> HoldLinks? {
        guard next != nil || gone != nil else { return nil }
        return HoldLinks(
            next: next?.uri.absoluteString,
            gone: gone?.uri.absoluteString,
            goneThroughRoute: gone.map { $0.directTarget == nil } ?? false
        )
    }
}
