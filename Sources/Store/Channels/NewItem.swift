package import Foundation

/// An item to append to a channel's log.
package struct NewItem: Sendable {
    /// The channel the item is published to.
    package var channel: String
    /// The publisher's id for the item, if it gave one; the store assigns one otherwise.
    package var id: String?
    /// The publisher's `prev-id`, kept as given.
    package var prevId: String?
    /// The published formats, encoded by the publisher side; opaque to the store.
    package var formats: Data
    /// The item's meta, encoded by the publisher side; opaque to the store. `nil` when it has none.
    package var meta: Data?
    /// The size counted by byte retention (defaults to the size of `formats` and `meta`).
    package var size: Int
    /// When the item was published; age retention counts from it.
    package var publishedAt: Date
    /// `no-seq`: the item enters the log at once, whatever its `prev-id`, and leaves the chain position as it is.
    package var bypassesReordering: Bool
    /// What the appender wants back with the item when it enters the log (``LoggedItem/context``), in memory only:
    /// an item that entered the log after a restart has none.
    package var context: (any Sendable)?

    /// Creates an item to append.
    /// - Parameters:
    ///   - channel: The channel name.
    ///   - id: The publisher's id, or `nil` to have the store assign one.
    ///   - prevId: The publisher's `prev-id`, if any.
    ///   - formats: The encoded formats.
    ///   - meta: The encoded item meta, if any.
    ///   - size: The size for byte retention; `nil` means the size of `formats` and `meta`.
    ///   - publishedAt: The publication time.
    ///   - bypassesReordering: `no-seq`: enter the log at once.
    ///   - context: Returned with the item when it enters the log.
    package init(
        channel: String,
        id: String? = nil,
        prevId: String? = nil,
        formats: Data,
        meta: Data? = nil,
        size: Int? = nil,
        publishedAt: Date = Date(),
        bypassesReordering: Bool = false,
        context: (any Sendable)? = nil
    ) {
        self.channel = channel
        self.id = id
        self.prevId = prevId
        self.formats = formats
        self.meta = meta
        self.size = size ?? formats.count + (meta?.count ?? 0)
        self.publishedAt = publishedAt
        self.bypassesReordering = bypassesReordering
        self.context = context
    }
}

/// The outcome of appending one ``NewItem``.
package struct AppendResult: Sendable, Hashable {
    /// The item's channel.
    package var channel: String
    /// The item's sequence in its channel (the original one if the item was a duplicate); 0 while it waits in the
    /// reordering buffer (``isWaiting``).
    package var sequence: Int64
    /// The item's id: the publisher's, or the one the store assigned.
    package var id: String
    /// Whether an item with the same `(channel, id)` was already retained or waiting, so nothing was appended.
    package var isDuplicate: Bool
    /// Whether the item was committed to the reordering buffer: its `prev-id` names an item not yet in the log.
    /// It enters the log when that item does, or once `message_wait` has passed.
    package var isWaiting: Bool

    package init(channel: String, sequence: Int64, id: String, isDuplicate: Bool, isWaiting: Bool = false) {
        self.channel = channel
        self.sequence = sequence
        self.id = id
        self.isDuplicate = isDuplicate
        self.isWaiting = isWaiting
    }

    /// `item` held in the reordering buffer; `alreadyWaiting`: it was there before (a resend, not stored again).
    static func waiting(_ item: NewItem, alreadyWaiting: Bool) -> AppendResult {
        AppendResult(
            channel: item.channel,
            sequence: 0,
            id: item.id ?? "",
            isDuplicate: alreadyWaiting,
            isWaiting: true
        )
    }
}

/// An item as retained in a channel's log.
package struct StoredItem: Sendable, Hashable {
    /// The item's channel.
    package var channel: String
    /// The item's sequence: 1 for the channel's first item, then one more for each; never reused.
    package var sequence: Int64
    /// The publisher's id, or the one the store assigned.
    package var id: String
    /// The publisher's `prev-id`, if any.
    package var prevId: String?
    /// The encoded formats, as appended.
    package var formats: Data
    /// The encoded item meta, as appended (`nil` when it had none).
    package var meta: Data?
    /// The size counted by byte retention.
    package var size: Int
    /// When the item was published (millisecond precision).
    package var publishedAt: Date

    package init(
        channel: String,
        sequence: Int64,
        id: String,
        prevId: String?,
        formats: Data,
        meta: Data? = nil,
        size: Int,
        publishedAt: Date
    ) {
        self.channel = channel
        self.sequence = sequence
        self.id = id
        self.prevId = prevId
        self.formats = formats
        self.meta = meta
        self.size = size
        self.publishedAt = publishedAt
    }
}

/// What one commit did, as the store hands it to ``ChannelStore/observeCommits(_:)``.
package struct CommittedBatch: Sendable {
    /// The items that entered channel logs, in log order: the batch's own, and waiting items they (or the end of
    /// their wait) released.
    package var logged: [LoggedItem]
    /// How many of the batch's items were new (logged or waiting), how many of those wait in the reordering
    /// buffer, and how many were duplicates.
    package var newItems: Int
    package var waitingItems: Int
    package var duplicates: Int
}

/// An item that entered its channel's log, as the store hands it to ``ChannelStore/observeCommits(_:)``.
package struct LoggedItem: Sendable {
    /// The item as retained.
    package var stored: StoredItem
    /// Whether it was appended `no-seq` (outside the chain).
    package var bypassedReordering: Bool
    /// Whether it entered the log past a missing predecessor, because its `message_wait` ran out.
    package var releasedAfterWait: Bool
    /// The appender's ``NewItem/context``; nil for an item that waited across a restart.
    package var context: (any Sendable)?
}

/// The one observer of a store's commits (``ChannelLogStore/observeCommits(_:)``), kept in a struct.
///
/// A closure kept directly in a `Mutex` and read with `withLock { $0 }` comes back wrapped in two more
/// reabstraction thunks on every read: the lock's body takes the value `inout` at the generic abstraction level,
/// and the write-back converts it again. Each call then went one frame pair deeper than the last, so the cost of a
/// commit grew with the number of commits before it (issue 12). A struct is passed as it is.
package struct CommitObserver: Sendable {
    package let receive: @Sendable (CommittedBatch) -> Void
}

extension LoggedItem {
    /// A new item as it entered its channel's log with `sequence` and `id` (the writers of both backends).
    init(entered item: NewItem, sequence: Int64, id: String, releasedAfterWait: Bool) {
        self.init(
            stored: StoredItem(
                channel: item.channel,
                sequence: sequence,
                id: id,
                prevId: item.prevId,
                formats: item.formats,
                meta: item.meta,
                size: item.size,
                publishedAt: Date(storeMilliseconds: item.publishedAt.storeMilliseconds)
            ),
            bypassedReordering: item.bypassesReordering,
            releasedAfterWait: releasedAfterWait,
            context: item.context
        )
    }
}
