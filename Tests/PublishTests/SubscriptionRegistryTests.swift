import Foundation
import Synchronization
import Testing

@testable import Publish

@Suite("The subscription registry")
struct SubscriptionRegistryTests {
    private final class Subscriber: ChannelSubscriber {
        func deliver(_ delivery: Delivery) {}
    }

    /// Issue 12: the observer, a closure read out of a `Mutex` on every notification, came back wrapped in two more
    /// reabstraction thunks each time, so holding N one-channel requests cost O(N²). Called from one place, it
    /// must run at exactly one depth (the count stops at 128 frames, which 100 notifications would pass).
    @Test("the observer runs at one stack depth however many channels came and went before")
    func observerDepthStaysFlat() {
        let registry = SubscriptionRegistry()
        let depths = Mutex<[Int]>([])
        let changes = Mutex<[String]>([])
        registry.observe { channel, subscribed in
            depths.withLock { $0.append(Thread.callStackReturnAddresses.count) }
            changes.withLock { $0.append("\(subscribed ? "+" : "-")\(channel)") }
        }
        let subscriber = Subscriber()
        for number in 0..<100 {
            registry.add(subscriber, channel: "c\(number)")
            registry.remove(subscriber, channels: ["c\(number)"])
        }
        #expect(changes.withLock { $0 }.prefix(4) == ["+c0", "-c0", "+c1", "-c1"])
        let recorded = depths.withLock { $0 }
        #expect(recorded.count == 200)
        #expect(Set(recorded).count == 1, "depths: \(recorded)")
    }
}
