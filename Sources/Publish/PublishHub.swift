import Dispatch
import Foundation
package import GRIP
package import Logging
import ServiceLifecycle
package import Store
import Synchronization

/// The publish side's centre: commits published items to the store, then fans them out from memory to the
/// sessions subscribed to their channels, in each channel's log order. It also starts holds, resuming each client
/// from its position in the log (DESIGN §2).
///
/// The vocabulary of holds, used across the module:
/// - a *hold* is a client request that a backend told P-8 to keep open (grip-spec §3.4-3.5): a ``HoldRequest``
///   says what it is, a ``HoldSession`` is the hold in progress, a ``HeldConnection`` is the client connection it
///   writes to; a *WebSocket session* (``WebSocketSession``) is the same for a WebSocket;
/// - a *hold record* (`Store.HoldRecord`) is what the store keeps of either, for `p8ctl held` and restarts;
/// - a *position* is where a client is on a channel (the id of the last item it saw); *resuming* sends what the
///   log holds after it (``ResumeReader``).
///
/// The pieces, by responsibility: the store's reordering buffer puts items in `prev-id` chain order before they
/// enter a log (grip-spec §5.1; the log order is the delivery order); the ``SubscriptionRegistry`` knows the
/// subscribers; the ``ResumeReader`` reads the log after a position; the delivery queue fans out.
///
/// Every publish input (the HTTP API, ZeroMQ) calls ``publish(_:)``; it returns once the items are committed:
/// acknowledged means durable. The store hands the items that entered logs to the hub in commit order, on its
/// writer queue; the hub queues them for delivery and the publisher is answered at once, while the fan-out runs.
///
/// Run it as a service: its loop releases items that waited `message_wait` for a missing predecessor.
package final class PublishHub: Sendable {
    package let store: any ChannelLogStore
    package let counters = PublishCounters()
    /// The id of this process in held-request records.
    package let instance: String
    let maxChannelsPerHold: Int
    let logger: Logger
    let registry = SubscriptionRegistry()
    let resumeReader: ResumeReader
    /// Fans items out, one commit's items after the other: a channel's subscribers get its items in log order.
    let deliveryQueue = DispatchQueue(label: "p8.publish.delivery")
    /// Paces the fan-outs of large items (``FanOutPacer``); nil hands every fan-out out at once.
    let fanOutPacer: (any FanOutPacer)?
    /// The channels whose fan-out is being paced, touched only on `deliveryQueue`.
    let pacedFanOuts = Mutex<[String: PacedFanOut]>([:])
    /// Open WebSocket sessions by id, for the command socket's `conncheck` and `refresh`.
    let webSockets = Mutex<[String: WebSocketSession]>([:])
    /// The held-request records.
    let holdRecords: HoldRecords

    /// What the hub keeps with an item on its way through the store, so that delivery decodes nothing.
    private struct PublishedItem: Sendable {
        var publisherID: String?
        var formats: PublishFormats
        var meta: [String: String]
    }

    package init(
        store: any ChannelLogStore,
        configuration: HandlerConfiguration,
        instance: String,
        logger: Logger,
        fanOutPacer: (any FanOutPacer)? = nil
    ) {
        self.store = store
        self.fanOutPacer = fanOutPacer
        self.instance = instance
        self.maxChannelsPerHold = max(1, configuration.connectionSubscriptionMax)
        self.logger = logger
        self.resumeReader = ResumeReader(store: store, logger: logger)
        self.holdRecords = HoldRecords(store: store, logger: logger)
        store.observeCommits { [weak self] batch in
            self?.committed(batch)
        }
    }

    // MARK: - Publishing

    /// Commits items (in order, as one group-committed write); they are delivered once they enter their channels'
    /// logs. Returns once they are durable.
    ///
    /// An item whose `(channel, id)` is still retained is not stored or delivered again.
    ///
    /// - Throws: the store's error when the commit failed (then nothing was stored or delivered).
    package func publish(_ items: [PublishItem]) async throws {
        try await withCheckedThrowingContinuation { continuation in
            self.publish(items) { continuation.resume(with: $0) }
        }
    }

    /// ``publish(_:)`` for callers that are not in a task (the control API's event loops): `completion` is called
    /// once the items are durable, or with the store's error, on the store's writer (hand it to an event loop).
    package func publish(
        _ items: [PublishItem],
        completion: @escaping @Sendable (Result<Void, any Error>) -> Void
    ) {
        guard !items.isEmpty else {
            completion(.success(()))
            return
        }
        self.counters.itemsReceived.add(items.count, ordering: .relaxed)
        let newItems = items.map { item in
            NewItem(
                channel: item.channel,
                id: item.id,
                prevId: item.prevID,
                formats: Data(item.formats.storedJSON()),
                meta: PublishItem.storedMetaJSON(item.meta).map { Data($0) },
                bypassesReordering: item.noSeq,
                context: PublishedItem(publisherID: item.id, formats: item.formats, meta: item.meta)
            )
        }
        let start = ContinuousClock.now
        let metrics = self.counters.metrics
        self.store.append(newItems) { result in
            if case .success = result {
                metrics?.committed(after: .now - start)
            }
            completion(result.map { _ in () })
        }
    }

    /// Whether a ``publish(_:)`` error means the database is out of reach for now (a PostgreSQL server lost or
    /// unreachable, the store probing it again): nothing was committed, and a retry later may succeed (503).
    package static func isStoreUnavailable(_ error: any Error) -> Bool {
        (error as? StoreError)?.code == .unreachable
    }

    /// What one commit appended (items that entered channel logs in log order, and counts), called on the store's
    /// writer queue: counted, then queued for delivery.
    private func committed(_ batch: CommittedBatch) {
        self.counters.itemsCommitted.add(batch.newItems, ordering: .relaxed)
        if batch.duplicates > 0 {
            self.counters.duplicates.add(batch.duplicates, ordering: .relaxed)
        }
        if batch.waitingItems > 0 {
            self.counters.itemsReordered.add(batch.waitingItems, ordering: .relaxed)
        }
        var deliveries: [Delivery] = []
        deliveries.reserveCapacity(batch.logged.count)
        var releasedAfterWait = 0
        for item in batch.logged {
            if item.releasedAfterWait {
                releasedAfterWait += 1
            }
            if let published = item.context as? PublishedItem {
                deliveries.append(
                    Delivery(
                        channel: item.stored.channel,
                        sequence: item.stored.sequence,
                        id: published.publisherID,
                        prevID: item.stored.prevId,
                        formats: published.formats,
                        meta: published.meta
                    )
                )
            } else if let delivery = Delivery(stored: item.stored, epoch: self.store.epoch) {
                // Committed by an earlier process: it waited in the reordering buffer across a restart.
                deliveries.append(delivery)
            }
        }
        if releasedAfterWait > 0 {
            self.counters.sequencerTimeouts.add(releasedAfterWait, ordering: .relaxed)
        }
        guard !deliveries.isEmpty else { return }
        self.deliveryQueue.async { [deliveries] in
            self.fanOut(deliveries)
        }
    }

    // MARK: - Holds

    /// Starts a hold: subscribes it, then checks each channel that carries a position against the log.
    ///
    /// `completion` gets the decision: at once (on the caller's thread) when no channel carries a position,
    /// else after the log reads, from another thread.
    package func startHold(
        _ request: HoldRequest,
        connection: any HeldConnection,
        completion: @escaping @Sendable (HoldDecision) -> Void
    ) {
        var request = request
        if request.channels.count > self.maxChannelsPerHold {
            self.logger.info(
                "hold names more channels than connection_subscription_max; extra channels ignored",
                metadata: ["p8.channels": "\(request.channels.count)"]
            )
            request.channels.removeLast(request.channels.count - self.maxChannelsPerHold)
        }
        let session = HoldSession(
            id: request.record?.id ?? UUID().uuidString,
            request: request,
            connection: connection,
            hub: self
        )
        self.registry.add(session)
        session.joined(
            at: Dictionary(
                request.channels.map { ($0.name, self.store.lastLoggedSequence(channel: $0.name)) },
                uniquingKeysWith: max
            )
        )
        self.counters.holdsActive.add(1, ordering: .relaxed)
        self.counters.holdsStarted.add(1, ordering: .relaxed)
        self.recordHold(session)
        guard request.channels.contains(where: { $0.logPosition != nil }) else {
            completion(.hold(session, resetChannels: []))
            return
        }
        Task {
            completion(await self.resolvePositions(session))
        }
    }

    /// Reads the log after each channel's position; decides between resuming, recovering and resetting.
    private func resolvePositions(_ session: HoldSession) async -> HoldDecision {
        let request = session.request
        var lost: [HoldRequest.Channel] = []
        for channel in request.channels {
            guard let position = channel.logPosition else { continue }
            switch await self.resumeReader.readAfter(channel: channel.name, position) {
            case .found(let items, let lastSequence):
                if !items.isEmpty {
                    self.counters.resumes.add(1, ordering: .relaxed)
                }
                session.setReplay(channel: channel.name, items: items, through: lastSequence)
            case .inSync:
                session.markInSync(channel: channel.name)
            case .lost:
                lost.append(channel)
            }
        }
        guard !lost.isEmpty else {
            return .hold(session, resetChannels: [])
        }
        let canRecover = !request.isRecovery && (request.mode == .response || request.hasNextLink)
        if canRecover {
            session.end()
            self.counters.recoveries.add(1, ordering: .relaxed)
            return .recover(
                request.channels.compactMap { channel in
                    (channel.resume?.currentID ?? channel.prevID).map {
                        GripLast(channel: channel.backendName, lastID: $0)
                    }
                }
            )
        }
        self.counters.resets.add(lost.count, ordering: .relaxed)
        if request.mode == .response {
            session.end()
            return .reset(channels: lost.map(\.backendName))
        }
        for channel in lost {
            session.markReset(channel: channel.name)
        }
        return .hold(session, resetChannels: lost.map(\.backendName))
    }

    /// Unsubscribes a session that ended and deletes its record; safe to call more than once.
    func sessionEnded(_ session: HoldSession) {
        guard self.registry.remove(session) else { return }
        self.counters.holdsActive.subtract(1, ordering: .relaxed)
        self.deleteRecord(of: session.id)
    }

    /// Reads a channel's log after `cursor` (an item's id, or a sequence), for a resume.
    func readAfter(channel: String, _ cursor: Cursor) async -> ResumeReader.Position {
        await self.resumeReader.readAfter(channel: channel, cursor)
    }

    // MARK: - Recover

    /// `POST /recover` and the `recover` command (grip-spec §5.5): forgets every channel's chain position and asks
    /// the backend again for every long-poll and every stream with a next link.
    package func recover() async {
        do {
            try await self.store.forgetChainPositions()
        } catch {
            self.logger.warning("channel positions not forgotten on recover", metadata: ["error": "\(error)"])
        }
        for session in self.registry.holds where session.request.mode == .response || session.request.hasNextLink {
            session.recover()
        }
    }
}

extension PublishHub: Service {
    /// Releases items held back by the reordering buffer once their wait is over, until shutdown.
    package func run() async throws {
        let tick = Duration.milliseconds(100)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: tick)
            guard self.store.hasWaitingItems else { continue }
            do {
                try await self.store.releaseWaitingItems(now: Date())
            } catch {
                self.logger.warning("items waiting for a predecessor not released", metadata: ["error": "\(error)"])
            }
        }
    }
}
