import Foundation
package import Logging
import ServiceLifecycle

/// Applies retention (``ChannelStore/trim(now:)``) periodically, in the background, until graceful shutdown.
package struct RetentionService: Service {
    private let store: any ChannelLogStore
    private let interval: Duration
    private let logger: Logger
    private let onTrim: (@Sendable (TrimSummary) -> Void)?

    /// Creates the service.
    /// - Parameters:
    ///   - store: The store to trim.
    ///   - interval: The time between two trims.
    ///   - logger: The logger for trim failures.
    ///   - onTrim: Called after each trim with what it removed (the metrics count removals).
    package init(
        store: any ChannelLogStore,
        interval: Duration = .seconds(5),
        logger: Logger,
        onTrim: (@Sendable (TrimSummary) -> Void)? = nil
    ) {
        self.store = store
        self.interval = interval
        self.logger = logger
        self.onTrim = onTrim
    }

    package func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        let summary = try await self.store.trim(now: Date())
                        self.onTrim?(summary)
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
