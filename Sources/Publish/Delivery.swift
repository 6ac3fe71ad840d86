package import GRIP
import Store

/// A committed item on its way to a channel's subscribers: what the publisher sent, with the place the store gave
/// it in the channel's log.
package struct Delivery: Sendable {
    /// The channel, as subscribed (route prefix included).
    package var channel: String
    /// The item's sequence in the channel's log.
    package var sequence: Int64
    /// The publisher's id; nil when it gave none (the store's assigned id is not an id for prev-id chains).
    package var id: String?
    /// The publisher's `prev-id`.
    package var prevID: String?
    /// The formats.
    package var formats: PublishFormats
    /// Item meta, for filters.
    package var meta: [String: String]
    /// When the item was committed (made at commit, as the hub makes its deliveries); nil for items read back
    /// from the log, whose delivery latency is not the publish path's.
    package var committedAt: ContinuousClock.Instant?

    package init(
        channel: String,
        sequence: Int64,
        id: String?,
        prevID: String?,
        formats: PublishFormats,
        meta: [String: String] = [:],
        committedAt: ContinuousClock.Instant? = .now
    ) {
        self.channel = channel
        self.sequence = sequence
        self.id = id
        self.prevID = prevID
        self.formats = formats
        self.meta = meta
        self.committedAt = committedAt
    }

    /// A delivery read back from the log (resume), with the meta kept with it (items stored before meta was kept
    /// have none).
    init?(stored: StoredItem, epoch: String) {
        guard let formats = try? PublishFormats(storedJSON: Array(stored.formats)) else {
            return nil
        }
        let meta = stored.meta.flatMap { PublishItem.meta(storedJSON: Array($0)) } ?? [:]
        self.init(
            channel: stored.channel,
            sequence: stored.sequence,
            id: Self.isAssigned(id: stored.id, sequence: stored.sequence) ? nil : stored.id,
            prevID: stored.prevId,
            formats: formats,
            meta: meta,
            committedAt: nil
        )
    }

    /// Whether an id has the form the store assigns (`"{epoch}-{sequence}"`) for this sequence.
    static func isAssigned(id: String, sequence: Int64) -> Bool {
        id.hasSuffix("-\(sequence)") && id.utf8.count == 16 + 1 + String(sequence).utf8.count
    }
}
