package import Synchronization

/// The publish side's counters, ready for a metrics endpoint and `p8ctl stats`. Monotonic unless noted.
package final class PublishCounters: Sendable {
    /// Items received by a publish input (before de-duplication).
    package let itemsReceived = Atomic<Int>(0)
    /// Items committed to the store.
    package let itemsCommitted = Atomic<Int>(0)
    /// Items dropped as re-sent `(channel, id)`.
    package let duplicates = Atomic<Int>(0)
    /// Items or contents handed to held connections.
    package let deliveries = Atomic<Int>(0)
    /// Holds started (response and stream).
    package let holdsStarted = Atomic<Int>(0)
    /// Holds in progress (a gauge).
    package let holdsActive = Atomic<Int>(0)
    /// Holds that started with items read from the log after the client's position.
    package let resumes = Atomic<Int>(0)
    /// Reset signals sent (a position that could not be resumed).
    package let resets = Atomic<Int>(0)
    /// Recoveries through the backend (re-sent requests, next links with `Grip-Last`).
    package let recoveries = Atomic<Int>(0)
    /// Items released by the reordering buffer after `message_wait` without their predecessor.
    package let sequencerTimeouts = Atomic<Int>(0)
    /// Items committed to the reordering buffer: they waited for the item their `prev-id` names.
    package let itemsReordered = Atomic<Int>(0)
    /// Next-link requests answered by another stream's request for the same link (grip-spec §3.6).
    package let nextLinksShared = Atomic<Int>(0)
    /// ZeroMQ publish frames and commands dropped as malformed (wrong frame count, bad encoding, invalid item).
    package let malformedFrames = Atomic<Int>(0)

    /// The exported metrics, once the runner attached them (nil when there is no metrics endpoint).
    private let attachedMetrics = Mutex<P8Metrics?>(nil)

    package init() {}

    package var metrics: P8Metrics? {
        self.attachedMetrics.withLock { $0 }
    }

    /// Makes `metrics` receive the publish side's events from now on.
    package func attach(_ metrics: P8Metrics) {
        self.attachedMetrics.withLock { $0 = metrics }
    }

    /// Every counter by name (the names `p8ctl stats` and the metrics endpoint use).
    package var snapshot: [(name: String, value: Int)] {
        [
            ("items_received", self.itemsReceived.load(ordering: .relaxed)),
            ("items_committed", self.itemsCommitted.load(ordering: .relaxed)),
            ("duplicates", self.duplicates.load(ordering: .relaxed)),
            ("deliveries", self.deliveries.load(ordering: .relaxed)),
            ("holds_started", self.holdsStarted.load(ordering: .relaxed)),
            ("holds_active", self.holdsActive.load(ordering: .relaxed)),
            ("resumes", self.resumes.load(ordering: .relaxed)),
            ("resets", self.resets.load(ordering: .relaxed)),
            ("recoveries", self.recoveries.load(ordering: .relaxed)),
            ("sequencer_timeouts", self.sequencerTimeouts.load(ordering: .relaxed)),
            ("items_reordered", self.itemsReordered.load(ordering: .relaxed)),
            ("next_links_shared", self.nextLinksShared.load(ordering: .relaxed)),
            ("malformed_frames", self.malformedFrames.load(ordering: .relaxed)),
        ]
    }
}
