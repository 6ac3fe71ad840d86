import Foundation
import GRIP
import Logging
import Proxy
import ServiceLifecycle
import UnixSignals

/// Reloads the routes file on SIGHUP and whenever the file changes, as Pushpin's proxy watches it: the file's
/// modification time, size and inode are checked every second, so an edit in place and a file replaced by a
/// rename both count. A file that cannot be read keeps the routes in force; invalid lines are skipped with a
/// warning each.
struct RoutesReloadService: Service {
    let path: String
    let routes: RouteTableBox
    let logger: Logger
    var checkInterval: Duration = .seconds(1)

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                let hangups = await UnixSignalsSequence(trapping: .sighup)
                for await _ in hangups.cancelOnGracefulShutdown() {
                    self.reload(reason: "SIGHUP")
                }
            }
            group.addTask {
                try? await cancelWhenGracefulShutdown {
                    var seen = Self.identity(of: self.path)
                    while true {
                        try await Task.sleep(for: self.checkInterval)
                        let current = Self.identity(of: self.path)
                        if current != seen {
                            seen = current
                            if current != nil {
                                self.reload(reason: "file changed")
                            }
                        }
                    }
                }
            }
        }
    }

    private func reload(reason: String) {
        do {
            let (table, warnings) = try RoutesSource.file(self.path).load()
            for warning in warnings {
                self.logger.warning("\(warning)")
            }
            self.routes.replace(with: table)
            self.logger.info(
                "routes reloaded",
                metadata: ["p8.routes.count": "\(table.routes.count)", "p8.reason": "\(reason)"]
            )
        } catch {
            self.logger.error("routes not reloaded: \(error)")
        }
    }

    /// What tells one version of the file from another; nil when it does not exist.
    private struct FileIdentity: Equatable {
        var modified: Date?
        var size: Int?
        var inode: Int?
    }

    private static func identity(of path: String) -> FileIdentity? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        return FileIdentity(
            modified: attributes[.modificationDate] as? Date,
            size: (attributes[.size] as? NSNumber)?.intValue,
            inode: (attributes[.systemFileNumber] as? NSNumber)?.intValue
        )
    }
}
