/// Where a read starts: after an item given by its id or sequence, or at the oldest retained item.
package enum Cursor: Sendable, Hashable {
    /// After the item with this id (the publisher's or the assigned one).
    case id(String)
    /// After the item with this sequence; `0` means from the channel's very first item.
    case sequence(Int64)
    /// From the oldest retained item, whatever has been trimmed.
    case oldestRetained
}

/// The answer to a read after a cursor, always with the database's epoch.
package struct ReadResult: Sendable, Hashable {
    /// What a read found.
    package enum Status: Sendable, Hashable {
        /// The cursor is known: these are the items after it, oldest first (empty if it is the newest).
        /// Fewer items than the limit means there are no more, for now.
        case found([StoredItem])
        /// The cursor was once in the log but items after it have been trimmed: resuming would skip some.
        case olderThanRetained
        /// The cursor is not an item of this channel in this database (never seen, or an id trimmed long ago).
        case unknownCursor
    }

    /// The database's epoch: a different epoch from the one a cursor came with means a wiped or restored database.
    package var epoch: String
    /// What the read found.
    package var status: Status
    /// The sequence of the newest item ever appended to the channel (0 if none).
    package var lastSequence: Int64

    package init(epoch: String, status: Status, lastSequence: Int64) {
        self.epoch = epoch
        self.status = status
        self.lastSequence = lastSequence
    }

    /// The items found, or `nil` if the cursor was older than retained or unknown.
    package var items: [StoredItem]? {
        if case .found(let items) = self.status { return items }
        return nil
    }
}

/// A channel's retained history at a glance.
package struct ChannelSummary: Sendable, Hashable {
    /// The channel name.
    package var name: String
    /// The sequence of the newest item ever appended.
    package var lastSequence: Int64
    /// The oldest retained sequence, or `nil` if nothing is retained.
    package var oldestSequence: Int64?
    /// Retained items.
    package var itemCount: Int
    /// Retained bytes (sum of item sizes).
    package var byteCount: Int

    package init(name: String, lastSequence: Int64, oldestSequence: Int64?, itemCount: Int, byteCount: Int) {
        self.name = name
        self.lastSequence = lastSequence
        self.oldestSequence = oldestSequence
        self.itemCount = itemCount
        self.byteCount = byteCount
    }
}

/// Where a read of a stored channel starts, or the answer that makes reading unnecessary: the cursor rules of
/// ``ChannelStore/read(channel:after:limit:)``, shared by every store.
enum ReadStart: Equatable {
    /// Read the items after this sequence.
    case after(Int64)
    /// The read is answered without items (the cursor is unknown or older than retained).
    case answered(ReadResult)

    /// The answer for a channel that has no row (never published to).
    static func missingChannel(_ cursor: Cursor, epoch: String) -> ReadResult {
        switch cursor {
        case .sequence(0), .oldestRetained:
            return ReadResult(epoch: epoch, status: .found([]), lastSequence: 0)
        case .sequence, .id:
            return ReadResult(epoch: epoch, status: .unknownCursor, lastSequence: 0)
        }
    }

    /// Resolves `cursor` in a channel whose newest sequence is `lastSequence` and oldest retained one `oldest`.
    /// `retainedID` is the sequence of the retained item with the cursor's id, looked up by the caller (nil when
    /// there is none, or the cursor is not an id).
    init(_ cursor: Cursor, epoch: String, lastSequence: Int64, oldest: Int64?, retainedID: Int64?) {
        let unknown = ReadStart.answered(ReadResult(epoch: epoch, status: .unknownCursor, lastSequence: lastSequence))
        let after: Int64
        switch cursor {
        case .oldestRetained:
            after = (oldest ?? lastSequence + 1) - 1
        case .sequence(let sequence):
            after = sequence
        case .id(let id):
            if let retainedID {
                after = retainedID
            } else if let (idEpoch, assigned) = ItemLookup.parseAssigned(id), idEpoch == epoch,
                assigned <= lastSequence
            {
                // An id this database assigned, whose item has been trimmed.
                after = assigned
            } else {
                self = unknown
                return
            }
        }
        guard after >= 0, after <= lastSequence else {
            self = unknown
            return
        }
        if after < lastSequence, (oldest ?? Int64.max) > after + 1 {
            self = .answered(ReadResult(epoch: epoch, status: .olderThanRetained, lastSequence: lastSequence))
        } else {
            self = .after(after)
        }
    }
}
