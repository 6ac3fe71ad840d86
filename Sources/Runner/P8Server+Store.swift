import Foundation
import GRIP
import Logging
import Proxy
import Publish
import Store

extension P8Server {
    /// Opens the `[store]` backend: the SQLite file, or the shared PostgreSQL database (connected, migrated, and
    /// followed for other nodes' items).
    static func openStore(_ configuration: StoreConfiguration, logger: Logger) async throws -> any ChannelLogStore {
        switch configuration.backend {
        case .sqlite:
            return try await ChannelStore.open(configuration: configuration, logger: logger)
        case .postgresql:
            let url = try PostgreSQLURL(configuration.postgresqlURL ?? "")
            // P8_POSTGRESQL_NOTIFY=off: no NOTIFY wake-up, only the follower's periodic comparison (for measuring
            // what the wake-up buys; scripts/backends-bench.py --notify-off).
            let notifies = ProcessInfo.processInfo.environment["P8_POSTGRESQL_NOTIFY"] != "off"
            return try await PostgreSQLStore.open(
                url: url,
                configuration: configuration,
                logger: logger,
                listens: notifies,
                notifies: notifies
            )
        }
    }

    /// This process's instance name in hold records. On PostgreSQL, where nodes share the records, it starts with
    /// the node (host and listening address) and a `:`, so that a restarted node marks only its own earlier records
    /// orphaned, never those of the other nodes.
    func instanceName() -> String {
        let run = UUID().uuidString
        guard self.configuration.store.backend == .postgresql else {
            return run
        }
        let listeners = self.overrides.listeners ?? self.configuration.runner.httpListeners
        let node = ProcessInfo.processInfo.hostName + "/" + listeners.map(\.description).joined(separator: ",")
        return node.replacingOccurrences(of: ":", with: "_") + ":" + run
    }

    /// The gone callbacks the holds of an earlier run owe: their clients went with the process that held them.
    static func goneCallbacks(owedBy orphans: [HoldRecord]) -> [OwedGoneCallback] {
        orphans.compactMap { record in
            guard let links = HoldLinks(decoding: record.links), let gone = links.gone, let uri = URL(string: gone)
            else { return nil }
            return OwedGoneCallback(uri: uri, throughRoute: links.goneThroughRoute, routeID: record.route)
        }
    }
}
