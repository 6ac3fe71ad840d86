package import GRIP
import Store

extension PublishHub {
    /// What the status page shows, as one JSON object (sent by `GET /status/events` every second):
    /// `counters` (since start), `held` (live holds by mode), `channels` (the busiest by subscribers, with the
    /// newest id), `behind` (the holds furthest behind their channel), `store` (size) and `retention`.
    package func statusSnapshot(now: Double, channelLimit: Int = 10) async -> JSONValue {
        var counters: [String: JSONValue] = [:]
        for (name, value) in self.counters.snapshot {
            counters[name] = .int(value)
        }
        let busiest = self.subscriberCounts().sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(channelLimit)
        var channels: [JSONValue] = []
        for (name, subscribers) in busiest {
            let newest = try? await self.store.newest(channel: name)
            channels.append(
                .object([
                    "name": .string(name),
                    "subscribers": .int(subscribers),
                    "newest": newest.map { .string($0.id) } ?? .null,
                    "sequence": newest.map { .int(Int($0.sequence)) } ?? .null,
                ])
            )
        }
        // Either backend: on PostgreSQL the levels are the whole database's, the holds this instance's.
        let held: [String: Int] = (try? await self.store.holdCounts(instance: self.instance)) ?? [:]
        let behind: [HoldLag] = (try? await self.store.holdsFurthestBehind(instance: self.instance, limit: 10)) ?? []
        let levels: StoreLevels? = try? await self.store.levels()
        let retention: RetentionPolicy = self.store.configuration.defaultRetention
        return .object([
            "time": .double(now),
            "counters": .object(counters),
            "held": .object([
                "response": .int(held["response"] ?? 0),
                "stream": .int(held["stream"] ?? 0),
                "ws": .int(held["webSocket"] ?? 0),
            ]),
            "channels": .array(channels),
            "behind": .array(
                behind.map { lag in
                    .object([
                        "hold": .string(lag.holdID),
                        "mode": .string(lag.mode),
                        "channel": .string(lag.channel),
                        "behind": .int(Int(lag.behind)),
                    ])
                }
            ),
            "store": .object([
                "bytes": .int(levels?.bytes ?? 0),
                "items": .int(levels?.items ?? 0),
                "channels": .int(levels?.channels ?? 0),
            ]),
            "retention": .object([
                "maxItems": .int(retention.maxItems),
                "maxAgeSeconds": .int(retention.maxAgeSeconds),
                "maxBytes": .int(retention.maxBytes),
            ]),
        ])
    }
}
