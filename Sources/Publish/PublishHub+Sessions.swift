package import Foundation
import GRIP
import Logging
import Store
import Synchronization

// WebSocket sessions, hold records, and what the stats and command sockets ask of the subscriptions.
extension PublishHub {
    // MARK: - WebSockets

    /// Starts the publish side of a client WebSocket: a session its backend's control messages subscribe to
    /// channels. End it (``WebSocketSession/end()``) when the connection closes. A connection taken over from an
    /// earlier server keeps its `id` and the time it opened (`startedAt`), and so its held-request record.
    package func openWebSocket(
        id: String? = nil,
        startedAt: Date? = nil,
        connection: any WebSocketConnection,
        routeID: String?,
        clientAddress: String?
    ) -> WebSocketSession {
        let session = WebSocketSession(
            id: id ?? UUID().uuidString,
            startedAt: startedAt ?? Date(),
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
        self.registry.add(session, channel: channel)
        self.recordWebSocket(session)
    }

    /// Removes a WebSocket from a channel's subscribers.
    func removeSubscription(_ session: WebSocketSession, channel: String) {
        self.registry.remove(session, channels: [channel])
        self.recordWebSocket(session)
    }

    /// A WebSocket session ended: unsubscribe it everywhere and delete its record. Called once per session.
    func webSocketEnded(_ session: WebSocketSession) {
        self.registry.remove(session, channels: session.channels.map { $0.name })
        self.webSockets.withLock { $0[session.id] = nil }
        self.counters.holdsActive.subtract(1, ordering: .relaxed)
        self.deleteRecord(of: session.id)
    }

    // MARK: - Hold records

    /// Writes the record of a hold that starts (after it joined its channels' logs: a channel without a prev-id
    /// is recorded at the sequence it joined at).
    func recordHold(_ session: HoldSession) {
        guard let channels = session.recordedChannels() else { return }
        self.holdRecords.write(self.record(of: session, channels: channels))
    }

    /// `session`'s record, with `channels` where its client is.
    func record(of session: HoldSession, channels: [HoldRecord.Channel]) -> HoldRecord {
        let request = session.request
        return HoldRecord(
            id: session.id,
            instance: self.instance,
            mode: request.mode == .stream ? .stream : .response,
            route: request.routeID,
            clientAddress: request.clientAddress,
            channels: channels,
            startedAt: session.startedAt,
            timeoutAt: request.timeoutAt,
            keepAlive: request.keepAliveDescription.map { Data($0.utf8) },
            links: request.links?.encoded,
            timeoutResponse: Data(Self.describe(request.response).utf8)
        )
    }

    private func recordWebSocket(_ session: WebSocketSession) {
        guard let record = session.currentRecord() else { return }
        self.holdRecords.write(record)
    }

    /// `session`'s record, with `channels` where its client is.
    func record(of session: WebSocketSession, channels: [HoldRecord.Channel]) -> HoldRecord {
        HoldRecord(
            id: session.id,
            instance: self.instance,
            mode: .webSocket,
            route: session.routeID,
            clientAddress: session.clientAddress,
            channels: channels,
            startedAt: session.startedAt
        )
    }

    func deleteRecord(of id: String) {
        self.holdRecords.delete(id: id)
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
        self.registry.observe(observer)
    }

    /// Live subscribers by channel.
    package func subscriberCounts() -> [String: Int] {
        self.registry.subscriberCounts()
    }

    /// Live subscribers of `channel` by the stats socket's mode (`response`, `stream`, `ws`); empty when it has
    /// none.
    package func subscribers(of channel: String) -> [String: Int] {
        self.registry.modes(of: channel)
    }

    /// Those of `ids` that name a hold or WebSocket session in progress (the command socket's `conncheck`).
    package func connectedSessions(among ids: [String]) -> [String] {
        var live = Set(self.registry.holds.map(\.id))
        live.formUnion(self.webSockets.withLock { $0.keys })
        return ids.filter { live.contains($0) }
    }
}

extension PublishHub {
    /// The database the hub commits to: its file and its epoch (for the control API's `GET /stats`, so that a
    /// client can tell which database a running server uses).
    package var database: (path: String, epoch: String) {
        (self.store.location, self.store.epoch)
    }
}
