import Foundation
package import GRIP
package import Logging
import ServiceLifecycle
import Synchronization

/// The stats socket (`stats_spec`, grip-spec §4.5): a PUB socket sending one-frame messages
/// `<type> T<tnetstring>` or `<type> J<json>` (`stats_format`), which subscribers filter by type prefix.
///
/// Sends `sub` when a channel gains or loses subscribers of a hold mode (refreshed before its `ttl` runs out)
/// and `report` every `stats_report_interval` seconds. P-8 has no `conn` messages yet: it has no ids for
/// client connections (see the README).
package final class ZMQStatsPublisher: Service, Sendable {
    private struct State {
        /// The modes each channel was last reported with.
        var reported: [String: Set<String>] = [:]
        var lastReport = ContinuousClock.now
        var lastRefresh = ContinuousClock.now
        var received = 0
        var sent = 0
    }

    /// `ttl` of `sub` messages, in seconds (Pushpin's `stats_subscription_ttl` default).
    static let subscriptionTTL = 60

    private let loop: ZMQSocketLoop
    private let hub: PublishHub
    private let format: StatsFormat
    private let reportInterval: Duration?
    private let from: String
    private let logger: Logger
    private let state = Mutex(State())

    /// Creates the publisher for a bound PUB socket.
    ///
    /// - Parameters:
    ///   - reportInterval: seconds between `report` messages; 0 sends none.
    /// - Throws: the system's error when the socket's thread cannot be set up.
    package init(
        socket: ZMQSocket,
        hub: PublishHub,
        format: StatsFormat,
        reportInterval: Int,
        logger: Logger
    ) throws {
        self.loop = try ZMQSocketLoop(socket: socket, name: "p8-zmq-stats", onMessage: nil)
        self.hub = hub
        self.format = format
        self.reportInterval = reportInterval > 0 ? .seconds(reportInterval) : nil
        self.from = "p8-handler_\(ProcessInfo.processInfo.processIdentifier)"
        self.logger = logger
        let counters = hub.counters
        self.state.withLock { state in
            state.received = counters.itemsReceived.load(ordering: .relaxed)
            state.sent = counters.deliveries.load(ordering: .relaxed)
        }
    }

    /// The frame for a message: `<type> ` then `T` + tnetstring or `J` + JSON.
    package static func frame(type: String, fields: [TNetString.Member], format: StatsFormat) -> [UInt8] {
        var frame = Array("\(type) ".utf8)
        switch format {
        case .tnetstring:
            frame.append(UInt8(ascii: "T"))
            frame += TNetString.dict(fields).encoded()
        case .json:
            frame.append(UInt8(ascii: "J"))
            frame += Self.json(.dict(fields)).encoded()
        }
        return frame
    }

    private static func json(_ value: TNetString) -> JSONValue {
        switch value {
        case .bytes(let bytes): return .string(String(decoding: bytes, as: UTF8.self))
        case .int(let number): return .int(number)
        case .float(let number): return .double(number)
        case .bool(let flag): return .bool(flag)
        case .null: return .null
        case .list(let elements): return .array(elements.map(Self.json))
        case .dict(let members):
            var object: [String: JSONValue] = [:]
            for member in members {
                object[String(decoding: member.key, as: UTF8.self)] = Self.json(member.value)
            }
            return .object(object)
        }
    }

    private func send(_ type: String, _ fields: [TNetString.Member]) {
        let frame = Self.frame(
            type: type,
            fields: [TNetString.Member("from", .string(self.from))] + fields,
            format: self.format
        )
        self.loop.perform { [logger] socket in
            do {
                try socket.send([frame], wait: false)
            } catch {
                logger.debug("stats message not sent", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: - Subscriptions

    /// Reports `channel`'s subscriptions as they are now: `sub` for each hold mode it gained, `sub` with
    /// `unavailable` for each it lost. Call it when the channel gains its first or loses its last subscriber.
    package func subscriptionChanged(channel: String) {
        let counts = self.hub.subscribers(of: channel)
        let (added, removed) = self.state.withLock { state -> (Set<String>, Set<String>) in
            let before = state.reported[channel] ?? []
            let now = Set(counts.keys)
            state.reported[channel] = now.isEmpty ? nil : now
            return (now.subtracting(before), before.subtracting(now))
        }
        for mode in added {
            self.sendSubscribed(channel: channel, mode: mode, subscribers: counts[mode] ?? 0)
        }
        for mode in removed {
            self.send(
                "sub",
                [
                    TNetString.Member("mode", .string(mode)),
                    TNetString.Member("channel", .string(channel)),
                    TNetString.Member("unavailable", .bool(true)),
                ]
            )
        }
    }

    private func sendSubscribed(channel: String, mode: String, subscribers: Int) {
        self.send(
            "sub",
            [
                TNetString.Member("mode", .string(mode)),
                TNetString.Member("channel", .string(channel)),
                TNetString.Member("ttl", .int(Self.subscriptionTTL)),
                TNetString.Member("subscribers", .int(subscribers)),
            ]
        )
    }

    /// Sends every reported subscription again with its current count, so a listener's `ttl` never runs out.
    private func refreshSubscriptions() {
        let channels = self.state.withLock { Array($0.reported.keys) }
        for channel in channels {
            let counts = self.hub.subscribers(of: channel)
            let modes = self.state.withLock { $0.reported[channel] ?? [] }
            for mode in modes {
                self.sendSubscribed(channel: channel, mode: mode, subscribers: counts[mode] ?? 0)
            }
        }
    }

    // MARK: - Reports

    /// Sends a `report` for the time since the last one.
    private func report(now: ContinuousClock.Instant) {
        let counters = self.hub.counters
        let received = counters.itemsReceived.load(ordering: .relaxed)
        let sent = counters.deliveries.load(ordering: .relaxed)
        let connections = counters.holdsActive.load(ordering: .relaxed)
        let (receivedDelta, sentDelta, elapsed) = self.state.withLock { state in
            defer {
                state.received = received
                state.sent = sent
                state.lastReport = now
            }
            return (received - state.received, sent - state.sent, now - state.lastReport)
        }
        let milliseconds = Int(
            elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        )
        var fields = [
            TNetString.Member("connections", .int(connections)),
            TNetString.Member("minutes", .int(connections * milliseconds / 60_000)),
            TNetString.Member("received", .int(receivedDelta)),
            TNetString.Member("sent", .int(sentDelta)),
            TNetString.Member("duration", .int(milliseconds)),
        ]
        // Pushpin's byte and message counts of the client and server sides; P-8 does not measure them yet.
        for name in Self.unmeasuredReportFields {
            fields.append(TNetString.Member(name, .int(0)))
        }
        self.send("report", fields)
    }

    private static let unmeasuredReportFields = [
        "http-response-sent", "blocks-received", "blocks-sent", "client-header-bytes-received",
        "client-header-bytes-sent", "client-content-bytes-received", "client-content-bytes-sent",
        "client-messages-received", "client-messages-sent", "server-header-bytes-received",
        "server-header-bytes-sent", "server-content-bytes-received", "server-content-bytes-sent",
        "server-messages-received", "server-messages-sent",
    ]

    /// Sends reports and subscription refreshes until graceful shutdown.
    package func run() async throws {
        self.loop.start()
        let refreshInterval = Duration.seconds(Self.subscriptionTTL / 2)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            let now = ContinuousClock.now
            let (reportDue, refreshDue) = self.state.withLock { state in
                let refreshDue = now - state.lastRefresh >= refreshInterval
                if refreshDue {
                    state.lastRefresh = now
                }
                return (self.reportInterval.map { now - state.lastReport >= $0 } ?? false, refreshDue)
            }
            if reportDue {
                self.report(now: now)
            }
            if refreshDue {
                self.refreshSubscriptions()
            }
        }
        await self.loop.stop()
    }
}
