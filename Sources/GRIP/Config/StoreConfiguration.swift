/// How long a channel's history is kept. Every limit is finite: P-8 never keeps history unbounded by default.
package struct RetentionPolicy: Sendable, Hashable {
    /// Items kept per channel; older items are trimmed first.
    package var maxItems: Int
    /// Seconds an item is kept after it was published.
    package var maxAgeSeconds: Int
    /// Bytes of published content kept per channel.
    package var maxBytes: Int

    package init(maxItems: Int = 1000, maxAgeSeconds: Int = 86_400, maxBytes: Int = 10_000_000) {
        self.maxItems = maxItems
        self.maxAgeSeconds = maxAgeSeconds
        self.maxBytes = maxBytes
    }
}

/// SQLite durability of a commit (`PRAGMA synchronous` in WAL mode).
package enum SynchronousMode: String, Sendable, Hashable {
    /// Survives a crash of the process (the default).
    case normal
    /// Survives a loss of power as well.
    case full
}

/// Where the store lives (`[store] backend`).
package enum StoreBackendKind: String, Sendable, Hashable {
    /// One SQLite file, for one node (the default).
    case sqlite
    /// A PostgreSQL database that several nodes share (`postgresql_url`).
    case postgresql
}

/// The `[store]` section: P-8's own keys for the SQLite database.
package struct StoreConfiguration: Sendable, Hashable {
    /// `backend=sqlite|postgresql`.
    package var backend: StoreBackendKind = .sqlite
    /// `postgresql_url=postgresql://user@host:port/database`, as written (its `{env:NAME}` are resolved when the
    /// store connects, so that the password never sits in the configuration).
    package var postgresqlURL: String?
    /// Absolute path of the database file (`database_file`, default `{rundir}/p8.sqlite`).
    package var databaseFile: String
    /// `synchronous=normal|full`.
    package var synchronous: SynchronousMode
    /// Retention of every channel without a more specific override (`max_items`, `max_age`, `max_bytes`).
    package var defaultRetention: RetentionPolicy
    /// Per channel-name prefix retention; the longest matching prefix wins (`retention_overrides`).
    package var retentionOverrides: [RetentionOverride]
    /// Byte budget over all channels together (`max_total_bytes`); oldest items anywhere go first.
    package var maxTotalBytes: Int
    /// How long an item whose `prev-id` names an item not yet in the log waits for it before entering the log
    /// anyway, in milliseconds: `[handler] message_wait` (grip-spec §5.1), since the reordering buffer is the store's.
    package var reorderingWaitMilliseconds: Int

    package struct RetentionOverride: Sendable, Hashable {
        package var channelPrefix: String
        package var policy: RetentionPolicy

        package init(channelPrefix: String, policy: RetentionPolicy) {
            self.channelPrefix = channelPrefix
            self.policy = policy
        }
    }

    package init(
        databaseFile: String,
        synchronous: SynchronousMode = .normal,
        defaultRetention: RetentionPolicy = RetentionPolicy(),
        retentionOverrides: [RetentionOverride] = [],
        maxTotalBytes: Int = 1_000_000_000,
        reorderingWaitMilliseconds: Int = 5000
    ) {
        self.databaseFile = databaseFile
        self.synchronous = synchronous
        self.defaultRetention = defaultRetention
        self.retentionOverrides = retentionOverrides
        self.maxTotalBytes = maxTotalBytes
        self.reorderingWaitMilliseconds = reorderingWaitMilliseconds
    }

    /// The retention that applies to `channel`: the longest matching prefix override, else the default.
    package func retention(forChannel channel: String) -> RetentionPolicy {
        var best: RetentionOverride?
        for candidate in self.retentionOverrides where channel.hasPrefix(candidate.channelPrefix) {
            if candidate.channelPrefix.count > (best?.channelPrefix.count ?? -1) {
                best = candidate
            }
        }
        return best?.policy ?? self.defaultRetention
    }
}
