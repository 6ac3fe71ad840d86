package import GRIP
import Synchronization

/// The live routes, replaced as a whole when the routes file is reloaded (SIGHUP).
package final class RouteTableBox: Sendable {
    private let table: Mutex<RouteTable>

    package init(_ table: RouteTable) {
        self.table = Mutex(table)
    }

    /// The current routes; a reload never affects a request already routed.
    package var current: RouteTable {
        self.table.withLock { $0 }
    }

    package func replace(with table: RouteTable) {
        self.table.withLock { $0 = table }
    }
}
