import Foundation
package import GRIP
package import Logging
import ServiceLifecycle
package import Store
import Synchronization

/// The publish side's centre: commits published items to the store, then fans them out from memory to the held
/// sessions subscribed to their channels, in each channel's log order, through the reordering buffer of
/// grip-spec §5.1. It also starts holds, resuming each client from its position in the log (DESIGN §2).
///
/// Every publish input (the HTTP API, ZeroMQ) calls ``publish(_:)``; it returns once the items are committed:
/// acknowledged means durable. Delivery happens on the store's writer queue right after the commit (see
/// ``ChannelStore/append(_:onCommit:)``), so it follows commit order without a task per publish.
///
/// Run it as a service: its loop releases items that waited `message_wait` for a missing predecessor.
package final class PublishHub: Sendable {
    package let store: ChannelStore
    package let counters = PublishCounters()
    /// The id of this process in held-request records.
    package let instance: String
    private let messageWait: Duration
    let maxChannelsPerHold: Int
    let logger: Logger
    private let registry = Mutex(Registry())
    /// Serialises fan-out, so that the writer queue and the sequencer's timer never interleave a channel's items.
    private let dispatchLock = Mutex(())
    private let subscriptionObserver = Mutex<(@Sendable (_ channel: String, _ subscribed: Bool) -> Void)?>(nil)
    /// Open WebSocket sessions by id, for the command socket's `conncheck` and `refresh`.
    let webSockets = Mutex<[String: WebSocketSession]>([:])

    /// Items a channel's reordering buffer keeps at most (grip-spec §5.1, §8.5).
    static let maxPendingPerChannel = 100

    private struct PendingDelivery {
        var delivery: Delivery
        var deadline: ContinuousClock.Instant
    }

    private struct ChannelEntry {
        var sessions: [ObjectIdentifier: any ChannelSubscriber] = [:]
        /// The reordering buffer's last id: the publisher id of the last item delivered in sequence.
        var lastID: String?
        var pending: [PendingDelivery] = []
    }

    private struct Registry {
        var channels: [String: ChannelEntry] = [:]
        var sessions: [ObjectIdentifier: HoldSession] = [:]
        /// Channels with items in their reordering buffer.
        var waitingChannels: Set<String> = []
    }

    package init(store: ChannelStore, configuration: HandlerConfiguration, instance: String, logger: Logger) {
        self.store = store
        self.instance = instance
        self.messageWait = .milliseconds(configuration.messageWait)
        self.maxChannelsPerHold = max(1, configuration.connectionSubscriptionMax)
        self.logger = logger
    }

    // MARK: - Publishing

    /// Commits items (in order, as one group-committed write) and delivers them. Returns once they are durable.
    ///
    /// An item whose `(channel, id)` is still retained is not stored or delivered again.
    ///
    /// - Throws: the store's error when the commit failed (then nothing was stored or delivered).
    package func publish(_ items: [PublishItem]) async throws {
        guard !items.isEmpty else { return }
        self.counters.itemsReceived.add(items.count, ordering: .relaxed)
        let newItems = items.map { item in
            NewItem(
                channel: item.channel,
                id: item.id,
                prevId: item.prevID,
                formats: Data(item.formats.storedJSON()),
                meta: PublishItem.storedMetaJSON(item.meta).map { Data($0) }
            )
        }
        _ = try await self.store.append(newItems) { results in
            self.committed(items, results)
        }
    }

    /// Runs on the writer queue right after the commit.
    private func committed(_ items: [PublishItem], _ results: [AppendResult]) {
        var deliveries: [Delivery] = []
        deliveries.reserveCapacity(items.count)
        var duplicates = 0
        for (item, result) in zip(items, results) {
            if result.isDuplicate {
                duplicates += 1
                continue
            }
            deliveries.append(
                Delivery(
                    channel: item.channel,
                    sequence: result.sequence,
                    id: item.id,
                    prevID: item.prevID,
                    formats: item.formats,
                    meta: item.meta,
                    noSeq: item.noSeq
                )
            )
        }
        self.counters.itemsCommitted.add(deliveries.count, ordering: .relaxed)
        if duplicates > 0 {
            self.counters.duplicates.add(duplicates, ordering: .relaxed)
        }
        self.dispatch(deliveries)
    }

    /// Passes items through their channels' reordering buffers and hands those in sequence to the subscribers.
    private func dispatch(_ deliveries: [Delivery]) {
        self.dispatchLock.withLock { _ in
            let ready = self.registry.withLock { registry -> [(Delivery, [any ChannelSubscriber])] in
                var ready: [(Delivery, [any ChannelSubscriber])] = []
                for delivery in deliveries {
                    guard var entry = registry.channels[delivery.channel] else { continue }
                    let sessions = Array(entry.sessions.values)
                    if delivery.noSeq {
                        ready.append((delivery, sessions))
                        continue
                    }
                    if let lastID = entry.lastID, let prevID = delivery.prevID, prevID != lastID {
                        // A gap: wait for the missing item, at most message_wait.
                        if entry.pending.count < Self.maxPendingPerChannel,
                            !entry.pending.contains(where: { $0.delivery.prevID == prevID })
                        {
                            entry.pending.append(
                                PendingDelivery(delivery: delivery, deadline: .now + self.messageWait)
                            )
                            registry.waitingChannels.insert(delivery.channel)
                        } else {
                            self.logger.info(
                                "reordering buffer full; item dropped from live delivery (it stays in the log)",
                                metadata: ["p8.channel": "\(delivery.channel)"]
                            )
                        }
                        registry.channels[delivery.channel] = entry
                        continue
                    }
                    ready.append((delivery, sessions))
                    entry.lastID = delivery.id
                    Self.releaseSuccessors(&entry, sessions: sessions, into: &ready)
                    registry.channels[delivery.channel] = entry
                    if entry.pending.isEmpty {
                        registry.waitingChannels.remove(delivery.channel)
                    }
                }
                return ready
            }
            for (delivery, sessions) in ready {
                for session in sessions {
                    session.deliver(delivery)
                }
            }
        }
    }

    /// Moves the buffered items that now follow the last id out of the buffer, in chain order.
    private static func releaseSuccessors(
        _ entry: inout ChannelEntry,
        sessions: [any ChannelSubscriber],
        into ready: inout [(Delivery, [any ChannelSubscriber])]
    ) {
        while let lastID = entry.lastID, let index = entry.pending.firstIndex(where: { $0.delivery.prevID == lastID }) {
            let next = entry.pending.remove(at: index).delivery
            ready.append((next, sessions))
            entry.lastID = next.id
        }
    }

    /// Releases buffered items whose wait is over, oldest first, with the successors they unblock.
    private func releaseExpired(now: ContinuousClock.Instant) {
        self.dispatchLock.withLock { _ in
            let ready = self.registry.withLock { registry -> [(Delivery, [any ChannelSubscriber])] in
                var ready: [(Delivery, [any ChannelSubscriber])] = []
                for name in registry.waitingChannels {
                    guard var entry = registry.channels[name] else {
                        registry.waitingChannels.remove(name)
                        continue
                    }
                    let sessions = Array(entry.sessions.values)
                    while let first = entry.pending.first, first.deadline <= now {
                        entry.pending.removeFirst()
                        self.counters.sequencerTimeouts.add(1, ordering: .relaxed)
                        ready.append((first.delivery, sessions))
                        entry.lastID = first.delivery.id
                        Self.releaseSuccessors(&entry, sessions: sessions, into: &ready)
                    }
                    registry.channels[name] = entry
                    if entry.pending.isEmpty {
                        registry.waitingChannels.remove(name)
                    }
                }
                return ready
            }
            for (delivery, sessions) in ready {
                for session in sessions {
                    session.deliver(delivery)
                }
            }
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
        let session = HoldSession(id: UUID().uuidString, request: request, connection: connection, hub: self)
        self.subscribe(session)
        self.counters.holdsStarted.add(1, ordering: .relaxed)
        self.recordHold(session)
        guard request.channels.contains(where: { $0.prevID != nil }) else {
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
            guard let prevID = channel.prevID else { continue }
            switch await self.readAfter(channel: channel.name, id: prevID) {
            case .found(let items, let lastSequence):
                if !items.isEmpty {
                    self.counters.resumes.add(1, ordering: .relaxed)
                }
                session.setReplay(channel: channel.name, items: items, through: lastSequence)
            case .inSync:
                continue
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
                    channel.prevID.map { GripLast(channel: channel.backendName, lastID: $0) }
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

    enum Position {
        /// The position is a retained item: these items follow it (up to `lastSequence`).
        case found([Delivery], lastSequence: Int64)
        /// The position means nothing to the log, and the log cannot tell of a gap: the channel has no items, or
        /// its publisher gives no ids (a backend's own cursor). Hold live, as Pushpin does.
        case inSync
        /// Items after the position are no longer retained, or the position is unknown on a channel whose
        /// publisher gives ids: resuming would skip items.
        case lost
    }

    /// Reads channel's log after the item `id`, for a resume.
    func readAfter(channel: String, id: String) async -> Position {
        var deliveries: [Delivery] = []
        var cursor = Cursor.id(id)
        var lastSequence: Int64 = 0
        do {
            while true {
                let result = try await self.store.read(channel: channel, after: cursor, limit: 1000)
                switch result.status {
                case .found(let items):
                    lastSequence = max(lastSequence, result.lastSequence)
                    deliveries.append(contentsOf: items.compactMap { Delivery(stored: $0, epoch: result.epoch) })
                    guard items.count == 1000, let last = items.last else {
                        return .found(deliveries, lastSequence: lastSequence)
                    }
                    cursor = .sequence(last.sequence)
                case .olderThanRetained:
                    return .lost
                case .unknownCursor:
                    if let successor = try await self.firstItem(of: channel, withPrevID: id) {
                        // The position was never published here, but an item names it as its prev-id (it was
                        // committed while this hold started): the client is just before that item.
                        cursor = .sequence(successor - 1)
                        continue
                    }
                    guard let newest = try await self.store.newest(channel: channel),
                        !Delivery.isAssigned(id: newest.id, sequence: newest.sequence)
                    else {
                        return .inSync
                    }
                    return .lost
                }
            }
        } catch {
            self.logger.warning(
                "cannot read the channel log to resume a hold",
                metadata: ["p8.channel": "\(channel)", "error": "\(error)"]
            )
            return .lost
        }
    }

    /// The sequence of the first item whose prev-id is `id`, among a channel's first 1,000 retained items.
    private func firstItem(of channel: String, withPrevID id: String) async throws -> Int64? {
        let recent = try await self.store.read(channel: channel, after: .oldestRetained, limit: 1000)
        return recent.items?.first { $0.prevId == id }?.sequence
    }

    private func subscribe(_ session: HoldSession) {
        let added = self.registry.withLock { registry -> [String] in
            let key = ObjectIdentifier(session)
            registry.sessions[key] = session
            var added: [String] = []
            for channel in session.request.channels {
                if registry.channels[channel.name] == nil {
                    added.append(channel.name)
                }
                registry.channels[channel.name, default: ChannelEntry()].sessions[key] = session
            }
            return added
        }
        self.counters.holdsActive.add(1, ordering: .relaxed)
        self.notifySubscriptions(added, subscribed: true)
    }

    /// Unsubscribes a session that ended; safe to call more than once.
    func sessionEnded(_ session: HoldSession) {
        let removed = self.registry.withLock { registry -> [String]? in
            let key = ObjectIdentifier(session)
            guard registry.sessions.removeValue(forKey: key) != nil else { return nil }
            return Self.remove(key, from: session.request.channels.map(\.name), in: &registry)
        }
        guard let removed else { return }
        self.counters.holdsActive.subtract(1, ordering: .relaxed)
        self.notifySubscriptions(removed, subscribed: false)
        do {
            try self.store.enqueueHolds(upserts: [], deletes: [session.id])
        } catch {
            self.logger.debug("hold record not removed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - WebSockets

    /// Starts the publish side of a client WebSocket: a session its backend's control messages subscribe to
    /// channels. End it (``WebSocketSession/end()``) when the connection closes.
    package func openWebSocket(
        id: String? = nil,
        connection: any WebSocketConnection,
        routeID: String?,
        clientAddress: String?
    ) -> WebSocketSession {
        let session = WebSocketSession(
            id: id ?? UUID().uuidString,
            routeID: routeID,
            clientAddress: clientAddress,
            connection: connection,
            hub: self
        )
        self.counters.holdsStarted.add(1, ordering: .relaxed)
        self.counters.holdsActive.add(1, ordering: .relaxed)
        self.webSockets.withLock { $0[session.id] = session }
        self.recordWebSocket(session)
        return session
    }

    /// Adds a WebSocket to a channel's subscribers.
    func addSubscription(_ session: WebSocketSession, channel: String) {
        let isFirst = self.registry.withLock { registry -> Bool in
            let isFirst = registry.channels[channel] == nil
            registry.channels[channel, default: ChannelEntry()].sessions[ObjectIdentifier(session)] = session
            return isFirst
        }
        if isFirst {
            self.notifySubscriptions([channel], subscribed: true)
        }
        self.recordWebSocket(session)
    }

    /// Removes a WebSocket from a channel's subscribers.
    func removeSubscription(_ session: WebSocketSession, channel: String) {
        let removed = self.registry.withLock { registry in
            Self.remove(ObjectIdentifier(session), from: [channel], in: &registry)
        }
        self.notifySubscriptions(removed, subscribed: false)
        self.recordWebSocket(session)
    }

    /// A WebSocket session ended: unsubscribe it everywhere and delete its record. Called once per session.
    func webSocketEnded(_ session: WebSocketSession) {
        let removed = self.registry.withLock { registry in
            Self.remove(ObjectIdentifier(session), from: session.channels.map { $0.name }, in: &registry)
        }
        self.webSockets.withLock { $0[session.id] = nil }
        self.counters.holdsActive.subtract(1, ordering: .relaxed)
        self.notifySubscriptions(removed, subscribed: false)
        do {
            try self.store.enqueueHolds(upserts: [], deletes: [session.id])
        } catch {
            self.logger.debug("hold record not removed", metadata: ["error": "\(error)"])
        }
    }

    /// Removes a subscriber from channels; returns the channels left without subscribers.
    private static func remove(
        _ key: ObjectIdentifier,
        from channels: [String],
        in registry: inout Registry
    ) -> [String] {
        var removed: [String] = []
        for channel in channels {
            registry.channels[channel]?.sessions[key] = nil
            if registry.channels[channel]?.sessions.isEmpty == true {
                registry.channels[channel] = nil
                registry.waitingChannels.remove(channel)
                removed.append(channel)
            }
        }
        return removed
    }

    private func recordWebSocket(_ session: WebSocketSession) {
        let record = HoldRecord(
            id: session.id,
            instance: self.instance,
            mode: .webSocket,
            route: session.routeID,
            clientAddress: session.clientAddress,
            channels: session.channels.map { HoldRecord.Channel(name: $0.name, lastId: $0.lastID) },
            startedAt: session.startedAt
        )
        do {
            try self.store.enqueueHolds(upserts: [record])
        } catch {
            self.logger.debug("hold record not written", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Hold records

    private func recordHold(_ session: HoldSession) {
        let request = session.request
        let record = HoldRecord(
            id: session.id,
            instance: self.instance,
            mode: request.mode == .stream ? .stream : .response,
            route: request.routeID,
            clientAddress: request.clientAddress,
            channels: request.channels.map { HoldRecord.Channel(name: $0.name, lastId: $0.prevID) },
            timeoutAt: request.timeoutAt,
            keepAlive: request.keepAliveDescription.map { Data($0.utf8) },
            links: request.linksDescription.map { Data($0.utf8) },
            timeoutResponse: Data(Self.describe(request.response).utf8)
        )
        do {
            try self.store.enqueueHolds(upserts: [record])
        } catch {
            self.logger.debug("hold record not written", metadata: ["error": "\(error)"])
        }
    }

    /// The response kept with a hold record, as a status line and headers (the body's size only).
    private static func describe(_ response: Instruct.Response) -> String {
        var lines = ["\(response.code) \(response.reason)"]
        lines += response.headers.map { "\($0.name): \($0.value)" }
        lines.append("(\(response.body.count) body bytes)")
        return lines.joined(separator: "\n")
    }

    // MARK: - Observing

    /// Calls `observer` when a channel gains its first subscriber (`true`) or loses its last (`false`), for
    /// inputs that subscribe upstream by channel (the ZeroMQ SUB socket).
    package func observeSubscriptions(_ observer: @escaping @Sendable (_ channel: String, _ subscribed: Bool) -> Void) {
        self.subscriptionObserver.withLock { $0 = observer }
    }

    private func notifySubscriptions(_ channels: [String], subscribed: Bool) {
        guard !channels.isEmpty, let observer = self.subscriptionObserver.withLock({ $0 }) else { return }
        for channel in channels {
            observer(channel, subscribed)
        }
    }

    /// Live subscribers by channel.
    package func subscriberCounts() -> [String: Int] {
        self.registry.withLock { registry in
            registry.channels.mapValues(\.sessions.count)
        }
    }

    /// Live subscribers of `channel` by the stats socket's mode (`response`, `stream`, `ws`); empty when it has
    /// none.
    package func subscribers(of channel: String) -> [String: Int] {
        self.registry.withLock { registry in
            var counts: [String: Int] = [:]
            guard let subscribers = registry.channels[channel]?.sessions.values else { return counts }
            for subscriber in subscribers {
                let mode = (subscriber as? HoldSession)?.request.mode.rawValue ?? "ws"
                counts[mode, default: 0] += 1
            }
            return counts
        }
    }

    /// Those of `ids` that name a hold in progress (the command socket's `conncheck`).
    package func connectedSessions(among ids: [String]) -> [String] {
        var live = self.registry.withLock { registry in
            Set(registry.sessions.values.map(\.id))
        }
        live.formUnion(self.webSockets.withLock { $0.keys })
        return ids.filter { live.contains($0) }
    }

    // MARK: - Recover

    /// `POST /recover` and the `recover` command (grip-spec §5.5): forgets every channel's last id and asks the
    /// backend again for every long-poll and every stream with a next link.
    package func recover() {
        let sessions = self.registry.withLock { registry -> [HoldSession] in
            for name in registry.channels.keys {
                registry.channels[name]?.lastID = nil
            }
            return Array(registry.sessions.values)
        }
        for session in sessions where session.request.mode == .response || session.request.hasNextLink {
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
            self.releaseExpired(now: .now)
        }
    }
}
