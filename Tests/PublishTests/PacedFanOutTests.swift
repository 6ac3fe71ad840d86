import Foundation
import GRIP
import P8TestSupport
import Publish
import Synchronization
import Testing

/// The pacing of large fan-outs, step by step: the test plays the event loops, releasing one slice at a time.
@Suite struct PacedFanOutTests {
    @Test("a large item goes out a slice at a time; another channel's item overtakes it, its own next item waits")
    func slicesKeepEachChannelsOrder() async throws {
        let pacer = SteppedPacer()
        try await withHub(fanOutPacer: pacer) { hub in
            let big = (0..<3).map { _ in RecordingConnection() }
            for connection in big {
                _ = try await hold(hub, holdRequest(.stream, channels: [("big", nil)]), connection)
            }
            let small = RecordingConnection()
            _ = try await hold(hub, holdRequest(.stream, channels: [("small", nil)]), small)
            // Each subscriber's write of this item is a whole slice.
            let large = String(repeating: "b", count: PublishHub.pacedFanOutBytes)
            try await hub.publish([textItem("big", large)])
            try await pacer.waitForPendingStep()
            // The registry's order is its own: count how many have it.
            #expect(big.map(\.recorded.count).sorted() == [0, 0, 1])

            try await hub.publish([textItem("small", "overtakes\n")])
            try await hub.publish([textItem("big", "after\n")])
            try await allDelivered(hub)
            #expect(small.streamed == "overtakes\n")
            #expect(
                big.map(\.recorded.count).sorted() == [0, 0, 1],
                "the channel's next item waits behind its paced item"
            )

            pacer.step()
            try await pacer.waitForPendingStep()
            #expect(big.map(\.recorded.count).sorted() == [0, 1, 1])
            pacer.step()
            try await pacer.waitForPendingStep()
            pacer.step()
            for connection in big {
                _ = try await connection.waitFor { $0.count == 2 }
                #expect(connection.streamed == large + "after\n")
            }
            try await allDelivered(hub)
            #expect(pacer.pendingSteps == 0, "the small item went out at once, and the pacing ended")
        }
    }

    @Test("an item whose fan-out stays under the slice goes out at once, without the pacer")
    func smallFanOutsAreNotPaced() async throws {
        let pacer = SteppedPacer()
        try await withHub(fanOutPacer: pacer) { hub in
            let connections = (0..<3).map { _ in RecordingConnection() }
            for connection in connections {
                _ = try await hold(hub, holdRequest(.stream, channels: [("news", nil)]), connection)
            }
            try await hub.publish([textItem("news", "a\n")])
            for connection in connections {
                _ = try await connection.waitFor { $0.count == 1 }
            }
            #expect(pacer.pendingSteps == 0)
        }
    }
}

/// A pacer the test steps by hand, as if the event loops had carried out the writes queued so far.
private final class SteppedPacer: FanOutPacer {
    private let pending = Mutex<[@Sendable () -> Void]>([])

    var pendingSteps: Int { self.pending.withLock(\.count) }

    func afterQueuedWrites(_ body: @escaping @Sendable () -> Void) {
        self.pending.withLock { $0.append(body) }
    }

    /// Lets the oldest waiting fan-out go on.
    func step() {
        let body = self.pending.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        body?()
    }

    func waitForPendingStep() async throws {
        guard try await eventually({ self.pendingSteps > 0 }) else {
            throw HubTestError("the fan-out did not wait for the pacer")
        }
    }
}
