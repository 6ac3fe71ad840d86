import GRIP
import Logging
import Proxy
import ServiceLifecycle
import UnixSignals

/// Reloads the routes file on SIGHUP, as Pushpin's proxy does. A file that cannot be read keeps the routes
/// in force; invalid lines are skipped with a warning each.
struct RoutesReloadService: Service {
    let source: RoutesSource
    let routes: RouteTableBox
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            do {
                let (table, warnings) = try self.source.load()
                for warning in warnings {
                    self.logger.warning("\(warning)")
                }
                self.routes.replace(with: table)
                self.logger.info("routes reloaded", metadata: ["p8.routes.count": "\(table.routes.count)"])
            } catch {
                self.logger.error("routes not reloaded: \(error)")
            }
        }
    }
}
