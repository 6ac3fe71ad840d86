package import Foundation
import GRIP
import Logging
import Store
import Synchronization

/// One client WebSocket on the publish side (grip-spec §7.4-7.5): the channels its backend subscribed it to,
/// and what each published `ws-message` means for it. It talks to the connection only through
/// ``WebSocketConnection``.
///
/// A subscription that carries the last id the client saw (P-8's resume extension) starts *resuming*: live items
/// are kept aside while the log is read after that id; the items read are sent first, then the live ones the read
/// did not include. When the id is older than what is retained, the connection is told to send a reset instead.
package final class WebSocketSession: RecordedSession, ChannelSubscriber {
    /// A unique id (also the held-request record's id).
    package let id: String
    /// The id of the route the connection came through, if it has one.
    let routeID: String?
    /// The client's address, for the held-request record.
    let clientAddress: String?
    /// When the connection opened, for the held-request record (a connection taken over keeps its time).
    package let startedAt: Date
    private let connection: any WebSocketConnection
    private let hub: PublishHub
    private let state = Mutex(State())

    private struct Subscription {
        /// The channel as the backend named it (without the route prefix).
        var backendName: String
        var filters: [String]
        /// Where the client is, for the held-request record: the id it subscribed from, then the id of each item
        /// sent since (the log sequence once an item was).
        var lastID: String?
        var lastSequence: Int64?
        /// Items up to this sequence were logged before the subscription, or read from the log at subscription:
        /// live copies of them are dropped.
        var replayedThrough: Int64 = 0
        /// Live items kept aside while the log is read; nil once live.
        var buffered: [Delivery]?

        mutating func advance(to delivery: Delivery) {
            if let id = delivery.id {
                self.lastID = id
            }
            self.lastSequence = delivery.sequence
        }
    }

    private struct State {
        var subscriptions: [String: Subscription] = [:]
        var meta: [String: String] = [:]
        var ended = false
        /// Whether positions moved since the held-request record was last written.
        var recordIsStale = false

        /// Marks the record stale; true when it was not already (the hub is then told, once, outside the lock).
        mutating func markRecordStale() -> Bool {
            defer { self.recordIsStale = true }
            return !self.recordIsStale
        }
    }

    init(
        id: String,
        startedAt: Date,
        routeID: String?,
        clientAddress: String?,
        connection: any WebSocketConnection,
        hub: PublishHub
    ) {
        self.id = id
        self.startedAt = startedAt
        self.routeID = routeID
        self.clientAddress = clientAddress
        self.connection = connection
        self.hub = hub
    }

    /// The subscribed channels (route prefix included) with the position the client is at on each.
    package var channels: [(name: String, lastID: String?)] {
        self.state.withLock { state in
            state.subscriptions.sorted { $0.key < $1.key }.map { ($0.key, $0.value.lastID) }
        }
    }

    /// The record as it stands now; nil once the session ended.
    func currentRecord() -> HoldRecord? {
        self.recordedChannels().map { self.hub.record(of: self, channels: $0) }
    }

    func currentPositions() -> HoldPositions? {
        self.recordedChannels().map { HoldPositions(holdID: self.id, channels: $0) }
    }

    /// The subscribed channels with where the client is on each, by name; nil once the session ended. The
    /// record is up to date after this call.
    private func recordedChannels() -> [HoldRecord.Channel]? {
        self.state.withLock { state in
            guard !state.ended else { return nil }
            state.recordIsStale = false
            return state.subscriptions.sorted { $0.key < $1.key }.map { name, subscription in
                HoldRecord.Channel(name: name, lastId: subscription.lastID, lastSequence: subscription.lastSequence)
            }
        }
    }

    // MARK: - Control messages

    /// Subscribes to `channel` (route prefix included; `backendName` without it). With `lastID`, first sends
    /// what the log retains after it, or a reset when it is older than what is retained.
    ///
    /// Subscribing again to a channel already subscribed only updates its filters.
    /// A session taken over from an earlier server subscribes from `resumeSequence`, the log sequence its client
    /// was at (`lastID` is then the id of that item, for the record).
    package func subscribe(
        channel: String,
        backendName: String,
        filters: [String],
        lastID: String?,
        resumeSequence: Int64? = nil
    ) {
        let isNew = self.state.withLock { state -> Bool in
            guard !state.ended else { return false }
            if state.subscriptions[channel] != nil {
                state.subscriptions[channel]?.filters = filters
                return false
            }
            guard state.subscriptions.count < self.hub.maxChannelsPerHold else {
                self.hub.logger.info(
                    "WebSocket subscribed to more channels than connection_subscription_max; subscription ignored",
                    metadata: ["p8.channel": "\(channel)"]
                )
                return false
            }
            // Items logged before the subscription (their delivery may still be on its way) are not sent live.
            let joinedAt = self.hub.store.lastLoggedSequence(channel: channel)
            let resuming = lastID != nil || resumeSequence != nil
            state.subscriptions[channel] = Subscription(
                backendName: backendName,
                filters: filters,
                lastID: lastID,
                lastSequence: resumeSequence ?? (lastID == nil ? joinedAt : nil),
                replayedThrough: joinedAt,
                buffered: resuming ? [] : nil
            )
            return true
        }
        guard isNew else { return }
        self.hub.addSubscription(self, channel: channel)
        guard let position = resumeSequence.map(Cursor.sequence) ?? lastID.map(Cursor.id) else { return }
        Task {
            await self.resume(channel: channel, after: position)
        }
    }

    private func resume(channel: String, after cursor: Cursor) async {
        let position = await self.hub.readAfter(channel: channel, cursor)
        let (closed, recordStale) = self.state.withLock { state -> (Bool, Bool) in
            guard !state.ended, var subscription = state.subscriptions[channel],
                let buffered = subscription.buffered
            else { return (false, false) }
            switch position {
            case .found(let items, let lastSequence):
                if !items.isEmpty {
                    self.hub.counters.resumes.add(1, ordering: .relaxed)
                } else {
                    subscription.lastSequence = lastSequence
                }
                subscription.replayedThrough = max(subscription.replayedThrough, lastSequence)
                for item in items {
                    subscription.advance(to: item)
                    if self.send(item, subscription, meta: state.meta, subscribed: state.subscriptions) {
                        state.ended = true
                        return (true, false)
                    }
                }
            case .inSync:
                subscription.lastSequence = subscription.replayedThrough
            case .lost:
                self.hub.counters.resets.add(1, ordering: .relaxed)
                self.connection.sendReset(channel: subscription.backendName)
            }
            subscription.buffered = nil
            state.subscriptions[channel] = subscription
            for item in buffered where item.sequence > subscription.replayedThrough {
                state.subscriptions[channel]?.advance(to: item)
                if self.send(item, subscription, meta: state.meta, subscribed: state.subscriptions) {
                    state.ended = true
                    return (true, false)
                }
            }
            return (false, state.markRecordStale())
        }
        if closed {
            self.hub.webSocketEnded(self)
        } else if recordStale {
            self.hub.holdRecords.positionsMoved(self)
        }
    }

    /// Unsubscribes from `channel` (route prefix included).
    package func unsubscribe(channel: String) {
        let removed = self.state.withLock { state in
            state.subscriptions.removeValue(forKey: channel) != nil
        }
        if removed {
            self.hub.removeSubscription(self, channel: channel)
        }
    }

    /// Sets (or with `nil`, deletes) a subscription meta value, used by filters (`user`).
    package func setMeta(name: String, value: String?) {
        self.state.withLock { $0.meta[name] = value }
    }

    // MARK: - Delivery

    func deliver(_ delivery: Delivery) {
        let (ended, recordStale) = self.state.withLock { state -> (Bool, Bool) in
            guard !state.ended, let subscription = state.subscriptions[delivery.channel] else { return (false, false) }
            if subscription.buffered != nil {
                state.subscriptions[delivery.channel]?.buffered?.append(delivery)
                return (false, false)
            }
            guard delivery.sequence > subscription.replayedThrough else { return (false, false) }
            state.subscriptions[delivery.channel]?.advance(to: delivery)
            if self.send(delivery, subscription, meta: state.meta, subscribed: state.subscriptions) {
                state.ended = true
                return (true, false)
            }
            return (false, state.markRecordStale())
        }
        if ended {
            self.hub.webSocketEnded(self)
        } else if recordStale {
            self.hub.holdRecords.positionsMoved(self)
        }
    }

    /// Hands one item to the connection (under the state lock, so that items reach it in delivery order).
    ///
    /// - Returns: whether the item closed the connection.
    @discardableResult
    private func send(
        _ delivery: Delivery,
        _ subscription: Subscription,
        meta: [String: String],
        subscribed: [String: Subscription]
    ) -> Bool {
        guard let format = delivery.formats.wsMessage else { return false }
        let passes = DeliveryFilters.passes(delivery, filters: subscription.filters, user: meta["user"]) { required in
            subscribed[required] != nil || subscribed.values.contains { $0.backendName == required }
        }
        guard passes else { return false }
        switch format.action {
        case .send:
            guard let content = self.filtered(format, subscription, meta: meta) else { return false }
            self.hub.counters.deliveries.add(1, ordering: .relaxed)
            self.hub.counters.metrics?.delivered(mode: "ws", committedAt: delivery.committedAt)
            self.connection.sendMessage(type: format.type, content: content)
            return false
        case .close:
            self.connection.close(
                code: format.closeCode.flatMap { UInt16(exactly: $0) },
                reason: format.closeReason ?? ""
            )
            return true
        case .refresh:
            self.connection.refresh()
            return false
        case .hint:
            return false
        }
    }

    /// The message's content through the subscription's content filters (grip-spec §3.7); `nil` when its
    /// `content-filters` do not match the subscription's or a filter fails: as Pushpin does (without `debug`), the
    /// message is dropped and the connection stays. WebSockets track no ids, so `build-id` has only `%(id)I`.
    private func filtered(_ format: WSMessageFormat, _ subscription: Subscription, meta: [String: String]) -> [UInt8]? {
        do {
            try ContentFilters.checkMatch(subscription: subscription.filters, published: format.contentFilters)
            guard subscription.filters.contains(where: { ContentFilters.acts($0, on: .message) }) else {
                return format.content
            }
            let context = ContentFilterContext(subscriptionMeta: meta, channelIDs: [:])
            return try ContentFilters.apply(subscription.filters, to: format.content, on: .message, context: context)
        } catch {
            self.hub.logger.info(
                "WebSocket message dropped by a content filter",
                metadata: ["error": "\(error.message)"]
            )
            return nil
        }
    }

    /// The command socket's `refresh` (grip-spec §4.4).
    func refresh() {
        self.connection.refresh()
    }

    // MARK: - Hand-over

    /// Ends the session for a server that takes its client over, and says where the client is: each subscription
    /// with its position, and the subscription meta. Every item sent before has been handed to the connection
    /// (sends happen under the state lock). Nil when the session ended, or a subscription is still resuming (try
    /// again).
    package func handOver() -> (subscriptions: [WebSocketSubscriptionPosition], meta: [String: String])? {
        let handedOver = self.state.withLock { state -> ([WebSocketSubscriptionPosition], [String: String])? in
            guard !state.ended, !state.subscriptions.values.contains(where: { $0.buffered != nil }) else {
                return nil
            }
            state.ended = true
            let positions = state.subscriptions.sorted { $0.key < $1.key }.map { name, subscription in
                WebSocketSubscriptionPosition(
                    channel: name,
                    backendName: subscription.backendName,
                    filters: subscription.filters,
                    lastID: subscription.lastID,
                    sequence: subscription.lastSequence
                )
            }
            return (positions, state.meta)
        }
        if handedOver != nil {
            self.hub.webSocketEnded(self)
        }
        return handedOver
    }

    // MARK: - End

    /// The connection closed: unsubscribe from everything. Safe to call more than once.
    package func end() {
        let wasEnded = self.state.withLock { state -> Bool in
            defer { state.ended = true }
            return state.ended
        }
        if !wasEnded {
            self.hub.webSocketEnded(self)
        }
    }
}

/// A WebSocket's subscription as a server that takes the client over needs it.
package struct WebSocketSubscriptionPosition: Codable, Sendable, Hashable {
    /// The channel (route prefix included) and as the backend named it.
    package var channel: String
    package var backendName: String
    package var filters: [String]
    /// The id of the last item sent (or the one subscribed from), and its log sequence when known.
    package var lastID: String?
    package var sequence: Int64?
}
