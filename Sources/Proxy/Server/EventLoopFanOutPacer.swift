import NIOCore
import NIOPosix
import Publish
import Synchronization

/// Paces the hub's large fan-outs by the event loops that write to the clients: a marker task queued on every
/// loop runs after the writes queued before it, and the last marker to run calls the hub back.
package struct EventLoopFanOutPacer: FanOutPacer {
    private let loops: [any EventLoop]

    package init() {
        self.loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
    }

    package func afterQueuedWrites(_ body: @escaping @Sendable () -> Void) {
        let countdown = Countdown(self.loops.count)
        for loop in self.loops {
            loop.execute {
                if countdown.tick() {
                    body()
                }
            }
        }
    }

    private final class Countdown: Sendable {
        private let remaining: Atomic<Int>

        init(_ count: Int) {
            self.remaining = Atomic(count)
        }

        /// Counts one down; true for the last.
        func tick() -> Bool {
            self.remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0
        }
    }
}
