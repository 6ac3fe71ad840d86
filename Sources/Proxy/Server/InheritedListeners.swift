import Foundation
package import GRIP
package import NIOCore
package import NIOPosix
import Synchronization

/// Listening sockets the runner bound and passed to this server process (`P8_LISTEN_FDS`), by role: `http.N`,
/// `https.N` (the Nth listener of each kind, in config order), `publish`, `metrics`. A server started alone (no
/// runner, or in-process in tests) has none and binds its own.
package enum InheritedListeners {
    /// The environment variable: `role=fd` pairs separated by commas, e.g. `http.0=3,publish=4`.
    package static let environmentVariable = "P8_LISTEN_FDS"

    private static let sockets = Mutex<[String: CInt]>(Self.parse(ProcessInfo.processInfo.environment))

    /// Parses `P8_LISTEN_FDS` from an environment.
    package static func parse(_ environment: [String: String]) -> [String: CInt] {
        var sockets: [String: CInt] = [:]
        for pair in (environment[Self.environmentVariable] ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let fd = CInt(parts[1]) {
                sockets[String(parts[0])] = fd
            }
        }
        return sockets
    }

    /// The inherited socket for a role, handed out once (a second listener of the same role binds its own).
    package static func take(_ role: String) -> CInt? {
        self.sockets.withLock { $0.removeValue(forKey: role) }
    }
}

extension ServerBootstrap {
    /// Adopts the runner's socket for `role` when there is one, else binds `address`.
    package func bind(_ address: ListenAddress, role: String) -> EventLoopFuture<any Channel> {
        if let fd = InheritedListeners.take(role) {
            return self.withBoundSocket(fd)
        }
        return self.bind(host: address.host, port: address.port)
    }
}
