import Foundation
package import Logging
import ServiceLifecycle

/// Applies retention (``ChannelStore/trim(now:)``) periodically, in the background, until graceful shutdown.
package struct RetentionService: Service {
    private let store: any ChannelLogStore
    private let interval: Duration
    private let logger: Logger

    /// Creates the service.
    /// - Parameters:
    ///   - store: The store to trim.
    ///   - interval: The time between two trims.
    ///   - logger: The logger for trim failures.
    package init(store: any ChannelLogStore, interval: Duration = .seconds(5), logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    package func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        try await self.store.trim(now: Date())
                    } catch is CancellationError {
                        return
                    } catch {
                        self.logger.info("retention failed, retrying later", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
