import Foundation
import GRIP
import NIOCore
import NIOHTTP1
import Publish

/// What a hold taken over from an earlier server starts from, besides its instructions: where its client is on
/// each channel, and its links as the earlier server resolved them.
struct HoldResumption {
    var positions: [String: HoldPosition]
    var nextLink: NextLink?
    var goneLink: LinkTarget?
    /// The record the hold keeps.
    var record: HoldRecordIdentity?
}

/// Handing a held client to the server that replaces this one, and taking one over (the restart without dropped
/// connections; see ``ClientHandover``).
extension ProxyExchange {
    /// Whether the exchange is a hold that can be handed over now: the hub decided to hold, no backend request is
    /// in flight (a re-sent request, a next link), and the request was complete and had no body (a re-sent request
    /// must be the same).
    var isHandoverReady: Bool {
        guard let held = self.hold, held.session != nil, held.instruct.holdMode != .none else { return false }
        return self.finished && self.requestComplete && self.state.requestBodyBytes == 0 && self.followers.isEmpty
    }

    /// Whether the new server can send the request again instead: the client's own `GET` or `HEAD`, complete and
    /// without a body, whose backend has not begun to answer (nothing was sent to the client). A long-poll's next
    /// request, in flight when a restart's settling time ends, is the usual case.
    var isReplayableForHandover: Bool {
        guard case .original = self.requestKind, self.hold == nil, !self.finished, self.requestComplete,
            self.state.requestBodyBytes == 0, self.state.response == .waitingForHead, self.followers.isEmpty
        else { return false }
        return self.requestHead.method == .GET || self.requestHead.method == .HEAD
    }

    /// Abandons the backend request (its connection is closed) for a server that sends it again.
    func abandonForReplay() {
        self.finish(reusingConnection: false)
    }

    /// Ends the hold for a server that takes the client over, and gives its record once everything the hub
    /// decided for it before has been written to the client; nil when it cannot be handed over (it is not
    /// ``isHandoverReady``, or a publish answered the long-poll meanwhile). Nothing more is sent to the client,
    /// and no gone callback: the client stays.
    func handOverHold(_ completion: @escaping (HeldExchangeRecord?) -> Void) {
        guard self.isHandoverReady, let held = self.hold, let session = held.session else {
            completion(nil)
            return
        }
        let generation = held.generation
        let exchange = NIOLoopBound(self, eventLoop: self.eventLoop)
        let done = NIOLoopBound(completion, eventLoop: self.eventLoop)
        let eventLoop = self.eventLoop
        session.handOver { positions in
            // Queued behind every delivery the session made before it ended.
            eventLoop.execute {
                let exchange = exchange.value
                guard let positions, exchange.hold?.generation == generation,
                    let record = exchange.holdRecord(positions: positions)
                else {
                    done.value(nil)
                    return
                }
                exchange.endHold()
                done.value(record)
            }
        }
    }

    /// Continues a hold an earlier server handed over: routed again (the routes may have changed), from the
    /// client's positions, with what is left of a long-poll's timeout; a stream's initial body is not sent again.
    /// False when no route takes the request now.
    func resumeHold(_ record: HeldExchangeRecord) -> Bool {
        guard self.takeOver(routeID: record.routeID) else { return false }
        var instruct = record.instruct
        if instruct.holdMode == .response, let timeoutAt = record.timeoutAt {
            instruct.timeout = max(1, Int(timeoutAt.timeIntervalSinceNow.rounded(.up)))
        }
        if record.responseHeadWritten {
            instruct.response.body = []
        }
        let nextLink = record.nextLink.flatMap { uri in
            LinkTarget(uri: uri, throughRoute: record.nextLinkThroughRoute).map {
                NextLink(target: $0, timeout: instruct.nextLink?.timeout ?? Instruct.defaultNextLinkTimeout)
            }
        }
        let goneLink = record.goneLink.flatMap { LinkTarget(uri: $0, throughRoute: record.goneLinkThroughRoute) }
        self.beginHold(
            instruct,
            resuming: HoldResumption(
                positions: record.positions,
                nextLink: nextLink,
                goneLink: goneLink,
                record: record.record
            )
        )
        return true
    }
}
