import Logging
import Store

/// Reads what a client missed: a channel's log after the position the client gives (a publisher id, a
/// `Last-Event-ID`, a WebSocket `last-id`), in pages, for held requests and WebSocket sessions alike.
///
/// The log is in the order live subscribers were given (the store's reordering buffer puts items in `prev-id` chain
/// order before they enter it), so reading by sequence after the position's item gives a resuming client exactly
/// what a live one received after that item.
struct ResumeReader: Sendable {
    let store: any ChannelLogStore
    let logger: Logger

    /// How many items one read returns at most.
    static let pageSize = 1000

    enum Position {
        /// The position is a retained item: these items follow it (up to `lastSequence`).
        case found([Delivery], lastSequence: Int64)
        /// The position means nothing to the log, and the log cannot tell of a gap: the channel has no items, or
        /// its publisher gives no ids (a backend's own cursor). Hold live, as Pushpin does.
        case inSync
        /// Items after the position are no longer retained, or the position is unknown on a channel whose
        /// publisher gives ids: resuming would skip items.
        case lost
    }

    /// Reads the channel's log after `position`: an item id, or a sequence (a hold taken over from an earlier
    /// server).
    func readAfter(channel: String, _ position: Cursor) async -> Position {
        var deliveries: [Delivery] = []
        var cursor = position
        var lastSequence: Int64 = 0
        do {
            while true {
                let result = try await self.store.read(channel: channel, after: cursor, limit: Self.pageSize)
                switch result.status {
                case .found(let items):
                    lastSequence = max(lastSequence, result.lastSequence)
                    deliveries.append(contentsOf: items.compactMap { Delivery(stored: $0, epoch: result.epoch) })
                    guard items.count == Self.pageSize, let last = items.last else {
                        return .found(deliveries, lastSequence: lastSequence)
                    }
                    cursor = .sequence(last.sequence)
                case .olderThanRetained:
                    return .lost
                case .unknownCursor:
                    guard case .id(let id) = position else { return .lost }
                    if let successor = try await self.firstItem(of: channel, withPrevID: id) {
                        // The position was never published here, but an item names it as its prev-id (it was
                        // committed while this hold started): the client is just before that item.
                        cursor = .sequence(successor - 1)
                        continue
                    }
                    guard let newest = try await self.store.newest(channel: channel),
                        !Delivery.isAssigned(id: newest.id, sequence: newest.sequence)
                    else {
                        return .inSync
                    }
                    return .lost
                }
            }
        } catch {
            self.logger.warning(
                "cannot read the channel log to resume a hold",
                metadata: ["p8.channel": "\(channel)", "error": "\(error)"]
            )
            return .lost
        }
    }

    /// The sequence of the first item whose prev-id is `id`, among a channel's first retained items.
    private func firstItem(of channel: String, withPrevID id: String) async throws -> Int64? {
        let recent = try await self.store.read(channel: channel, after: .oldestRetained, limit: Self.pageSize)
        return recent.items?.first { $0.prevId == id }?.sequence
    }
}
