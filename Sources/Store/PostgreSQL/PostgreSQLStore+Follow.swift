import Foundation
import Logging
import PostgresNIO
import Synchronization

/// What this node has handed to the commit observer, per channel, and what it knows is left to read.
struct FollowState: Sendable {
    /// The sequence of the newest item handed to the observer, per channel (absent: 0).
    var delivered: [String: Int64] = [:]
    /// Channels with items past `delivered`, to read from the log, with the newest sequence known.
    var pending: [String: Int64] = [:]
    /// Set when notifications may have been missed: the next pass compares every channel with the database.
    var needsFullCheck = true
    /// Channels (with their newest sequence) committed here and not yet notified, and whether a NOTIFY is being
    /// sent.
    var unsent: [String: Int64] = [:]
    var isNotifying = false
}

// Fan-out across nodes. Every node hands each channel's items to its observer (the hub) in log order, once, whichever
// node committed them: the items of this node's commits at once (with their publish context) when they directly
// follow what was delivered, and everything else by reading the log after the last sequence delivered per channel.
// A commit is followed by a NOTIFY (after COMMIT, outside the append transaction, so that the appends' commits never
// wait for NOTIFY's global lock; coalesced while one is in flight) listing "sequence channel" lines: only a wake-up.
// Missed notifications (the listening connection dropped, a payload too long) cost latency, never items: a full
// comparison of every channel's last sequence with what was delivered runs every `followInterval`, and after the
// listener reconnects.
extension PostgreSQLStore {
    static let notificationChannel = "p8_log"
    /// NOTIFY payloads are limited to 8000 bytes; past this, the notification says "check everything" instead.
    static let maxNotificationPayload = 7900

    package func lastLoggedSequence(channel: String) -> Int64 {
        self.follow.withLock { $0.delivered[channel] ?? 0 }
    }

    /// Always true: other nodes' items may wait too, and a release pass is one cheap query.
    package var hasWaitingItems: Bool { true }

    /// Hands a local commit's items to the observer: those that follow what was delivered at once, the others
    /// (another node committed items in between that this node has not read yet) by the follower.
    func deliverLocal(_ logged: [LoggedItem], newItems: Int, waitingItems: Int, duplicates: Int) {
        var wakes = false
        self.follow.withLock { state in
            var accepted: [LoggedItem] = []
            var deferred: Set<String> = []
            for item in logged {
                let channel = item.stored.channel
                if deferred.contains(channel) {
                    continue
                }
                let delivered = state.delivered[channel] ?? 0
                if item.stored.sequence == delivered + 1 {
                    accepted.append(item)
                    state.delivered[channel] = item.stored.sequence
                } else if item.stored.sequence > delivered {
                    deferred.insert(channel)
                    state.pending[channel] = max(state.pending[channel] ?? 0, item.stored.sequence)
                }
            }
            wakes = !deferred.isEmpty
            if !accepted.isEmpty || newItems > 0 {
                self.commitObserver.withLock { $0 }?.receive(
                    CommittedBatch(
                        logged: accepted,
                        newItems: newItems,
                        waitingItems: waitingItems,
                        duplicates: duplicates
                    )
                )
            }
        }
        if wakes {
            self.wakeFollower.yield()
        }
    }

    /// Tells the other nodes (a NOTIFY, after the commit) which channels have new items. Coalesced: while one
    /// NOTIFY is being sent, the channels of the commits that follow are merged into the next, so that a node
    /// under load sends far fewer NOTIFYs than it commits (each takes the server's global notification lock).
    func notifyOthers(_ logged: [LoggedItem]) {
        guard self.notifies, !logged.isEmpty else { return }
        let starts = self.follow.withLock { state -> Bool in
            for item in logged {
                state.unsent[item.stored.channel] = max(state.unsent[item.stored.channel] ?? 0, item.stored.sequence)
            }
            defer { state.isNotifying = true }
            return !state.isNotifying
        }
        guard starts else { return }
        Task { await self.sendNotifications() }
    }

    /// Sends NOTIFYs until nothing is left unsent.
    private func sendNotifications() async {
        while true {
            let newest = self.follow.withLock { state -> [String: Int64] in
                defer { state.unsent = [:] }
                if state.unsent.isEmpty {
                    state.isNotifying = false
                }
                return state.unsent
            }
            if newest.isEmpty {
                return
            }
            var payload = newest.map { "\($0.value) \($0.key)" }.joined(separator: "\n")
            if payload.utf8.count > Self.maxNotificationPayload {
                payload = "*"
            }
            do {
                try await self.client.query(
                    "SELECT pg_notify(\(Self.notificationChannel), \(payload))",
                    logger: self.logger
                )
            } catch {
                self.logger.debug("notification not sent", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Reads, until cancelled, what other nodes committed: woken by notifications and local gaps, and every
    /// `followInterval` compares every channel with the database.
    func runFollower(wakes: AsyncStream<Void>, interval: Duration) async {
        let ticker = Task { [wakeFollower] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                self.follow.withLock { $0.needsFullCheck = true }
                wakeFollower.yield()
            }
        }
        defer { ticker.cancel() }
        for await _ in wakes {
            do {
                try await self.catchUp()
            } catch {
                self.follow.withLock { $0.needsFullCheck = true }
                self.logger.info("reading other nodes' items failed, retrying", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Listens for other nodes' notifications until cancelled, reconnecting with back-off.
    func runListener() async {
        var delay = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: self.connectionConfiguration,
                    id: 0,
                    logger: self.logger
                )
                defer { Task { try? await connection.close() } }
                try await connection.listen(on: Self.notificationChannel) { notifications in
                    // Whatever was committed while nobody listened is found by the full comparison.
                    self.follow.withLock { $0.needsFullCheck = true }
                    self.wakeFollower.yield()
                    delay = .milliseconds(100)
                    for try await notification in notifications {
                        self.noted(notification.payload)
                    }
                }
            } catch {
                if Task.isCancelled { return }
                if let error = error as? PSQLError, Self.isOutage(error) {
                    // The listening connection is the first to see a server go away: publishes are refused at once
                    // rather than after a commit's deadline.
                    self.noteFailure(
                        StoreError(
                            code: .unreachable,
                            path: self.url.description,
                            message: "PostgreSQL: " + Self.reason(error)
                        )
                    )
                }
                self.logger.info(
                    "listening for other nodes' commits failed, reconnecting",
                    metadata: ["error": "\(error)"]
                )
            }
            self.follow.withLock { $0.needsFullCheck = true }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }

    private func noted(_ payload: String) {
        let wakes = self.follow.withLock { state -> Bool in
            if payload == "*" {
                state.needsFullCheck = true
                return true
            }
            var wakes = false
            for line in payload.split(separator: "\n") {
                guard let space = line.firstIndex(of: " "), let sequence = Int64(line[..<space]) else { continue }
                let channel = String(line[line.index(after: space)...])
                if sequence > (state.delivered[channel] ?? 0) {
                    state.pending[channel] = max(state.pending[channel] ?? 0, sequence)
                    wakes = true
                }
            }
            return wakes
        }
        if wakes {
            self.wakeFollower.yield()
        }
    }

    /// Reads the log of every channel known to have undelivered items, and hands them to the observer in order.
    private func catchUp() async throws {
        if self.follow.withLock({ state in
            defer { state.needsFullCheck = false }
            return state.needsFullCheck
        }) {
            var lastSequences: [(String, Int64)] = []
            for try await row in try await self.client.query(
                "SELECT name, last_sequence FROM channel",
                logger: self.logger
            ).decode((String, Int64).self) {
                lastSequences.append(row)
            }
            self.follow.withLock { state in
                for (name, last) in lastSequences where last > (state.delivered[name] ?? 0) {
                    state.pending[name] = max(state.pending[name] ?? 0, last)
                }
            }
        }
        while let (channel, after) = self.follow.withLock({ state -> (String, Int64)? in
            guard let channel = state.pending.keys.first else { return nil }
            let delivered = state.delivered[channel] ?? 0
            if delivered >= state.pending[channel] ?? 0 {
                state.pending[channel] = nil
                return ("", -1)
            }
            return (channel, delivered)
        }) {
            if after < 0 {
                continue
            }
            var result = try await self.read(channel: channel, after: .sequence(after), limit: 1000)
            if result.status == .olderThanRetained {
                self.logger.warning(
                    "items trimmed before this node delivered them",
                    metadata: ["p8.channel": "\(channel)", "p8.sequence": "\(after)"]
                )
                result = try await self.read(channel: channel, after: .oldestRetained, limit: 1000)
            }
            let items = result.items ?? []
            self.follow.withLock { state in
                var delivered = state.delivered[channel] ?? 0
                var logged: [LoggedItem] = []
                for item in items where item.sequence > delivered {
                    logged.append(
                        LoggedItem(stored: item, bypassedReordering: false, releasedAfterWait: false, context: nil)
                    )
                    delivered = item.sequence
                }
                state.delivered[channel] = max(delivered, after)
                if items.isEmpty || delivered >= result.lastSequence {
                    // Nothing more to read (or an unknown position): the full comparison looks again later.
                    if (state.pending[channel] ?? 0) <= max(delivered, result.lastSequence) || items.isEmpty {
                        state.pending[channel] = nil
                    }
                }
                if !logged.isEmpty {
                    self.commitObserver.withLock { $0 }?.receive(
                        CommittedBatch(logged: logged, newItems: 0, waitingItems: 0, duplicates: 0)
                    )
                }
            }
        }
    }
}
