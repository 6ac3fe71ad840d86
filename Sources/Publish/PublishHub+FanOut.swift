import Dispatch
import GRIP
import Synchronization

/// Paces a large fan-out by the connections' threads: ``afterQueuedWrites(_:)`` calls `body` once every write
/// handed to a connection so far has been carried out. The proxy implements it by queueing a marker behind them on
/// each event loop.
package protocol FanOutPacer: Sendable {
    func afterQueuedWrites(_ body: @escaping @Sendable () -> Void)
}

/// A channel's fan-out in slices: the item being handed out, to whom, how far, and the channel's items behind it.
struct PacedFanOut: Sendable {
    var delivery: Delivery
    var subscribers: [any ChannelSubscriber]
    var next = 0
    var waiting: [Delivery] = []
}

// Fan-out, on the delivery queue: every subscriber of a channel gets its items in log order.
//
// An item whose payload times its number of subscribers passes `pacedFanOutBytes` (say 100 KB to 2,000 streams,
// 200 MB of socket writes) is handed out in slices of about that many bytes, the next slice once the event loops
// have carried out the writes queued before it (`FanOutPacer`). Without this, such an item put all its writes in
// the event loops' queues at once, and an item of another channel committed just after waited behind all of
// them (issue 16: fast clients' p99 26 times their p99 alone, beside 2,000 clients of large items). Items of a
// channel being paced wait behind it, so each channel's order is kept; another channel's items may overtake it.
extension PublishHub {
    /// The bytes of writes a fan-out queues on the event loops before it waits for them.
    package static let pacedFanOutBytes = 1 << 20

    func fanOut(_ deliveries: [Delivery]) {
        for delivery in deliveries {
            let queuedBehind = self.pacedFanOuts.withLock { paced -> Bool in
                guard paced[delivery.channel] != nil else { return false }
                paced[delivery.channel]?.waiting.append(delivery)
                return true
            }
            if queuedBehind {
                continue
            }
            let subscribers = self.registry.subscribers(of: delivery.channel)
            guard let pacer = self.fanOutPacer,
                delivery.payloadBytes * subscribers.count > Self.pacedFanOutBytes
            else {
                for subscriber in subscribers {
                    subscriber.deliver(delivery)
                }
                continue
            }
            self.pacedFanOuts.withLock {
                $0[delivery.channel] = PacedFanOut(delivery: delivery, subscribers: subscribers)
            }
            self.continuePacedFanOut(channel: delivery.channel, pacer: pacer)
        }
    }

    /// Hands out the next slice of a channel's paced fan-out (items behind it included), then waits for the event
    /// loops before the next; ends the pacing once the channel's queue is empty.
    private func continuePacedFanOut(channel: String, pacer: any FanOutPacer) {
        var budget = Self.pacedFanOutBytes
        while budget > 0 {
            let step = self.pacedFanOuts.withLock { paced -> PacedStep in
                guard var fanOut = paced[channel] else { return .done }
                if fanOut.next < fanOut.subscribers.count {
                    let count = max(1, budget / max(1, fanOut.delivery.payloadBytes))
                    let end = min(fanOut.subscribers.count, fanOut.next + count)
                    let slice = Array(fanOut.subscribers[fanOut.next..<end])
                    fanOut.next = end
                    paced[channel] = fanOut
                    return .deliver(fanOut.delivery, slice)
                }
                guard !fanOut.waiting.isEmpty else {
                    paced[channel] = nil
                    return .done
                }
                let delivery = fanOut.waiting.removeFirst()
                paced[channel] = fanOut
                return .start(delivery)
            }
            switch step {
            case .done:
                return
            case .deliver(let delivery, let slice):
                for subscriber in slice {
                    subscriber.deliver(delivery)
                }
                budget -= max(1, delivery.payloadBytes) * slice.count
            case .start(let delivery):
                // Its subscribers are those of when its turn comes, as for an item handed out at once.
                let subscribers = self.registry.subscribers(of: channel)
                self.pacedFanOuts.withLock { paced in
                    paced[channel]?.delivery = delivery
                    paced[channel]?.subscribers = subscribers
                    paced[channel]?.next = 0
                }
            }
        }
        pacer.afterQueuedWrites {
            self.deliveryQueue.async {
                self.continuePacedFanOut(channel: channel, pacer: pacer)
            }
        }
    }

    private enum PacedStep {
        case done
        case deliver(Delivery, [any ChannelSubscriber])
        case start(Delivery)
    }
}

extension Delivery {
    /// The largest of its formats' payloads: what one subscriber's write costs, about.
    var payloadBytes: Int {
        var response = 0
        if case .bytes(let bytes)? = self.formats.httpResponse?.body {
            response = bytes.count
        }
        return max(response, self.formats.httpStream?.content.count ?? 0, self.formats.wsMessage?.content.count ?? 0)
    }
}
