/// One channel's `prev-id` chain during a batch, and the rules that decide where each item goes: into the log now,
/// or into the reordering buffer to wait for its predecessor (grip-spec §5.1). Pure: the writers of both backends
/// (``BatchWriter`` on SQLite, ``PostgreSQLBatchWriter``) keep one per channel they touch, ask it what to do, and
/// write what it decided to their database.
///
/// The chain position (`chainLastId`) is the id of the last item that entered the log in sequence. An item whose
/// `prev-id` names another item waits, unless it has no id, bypasses reordering (`no-seq`), would be a second
/// branch of a `prev-id` already waiting, or the buffer is full; it enters the log, with the next sequence, as soon
/// as the item it names does (``nextSuccessor()``), or once `message_wait` has passed (``nextExpired(receivedThrough:)``).
struct ChainPlanner: Sendable {
    /// Items a channel's reordering buffer keeps at most (grip-spec §5.1, §8.5); past that, an item enters the log
    /// at once.
    static let maxWaiting = 100

    /// What to do with an item that is not already in the log.
    enum Step: Sendable, Equatable {
        /// An item with this id already waits: a duplicate.
        case alreadyWaiting
        /// Into the reordering buffer (``wait(_:receivedAt:)``).
        case wait
        /// Into the log now (``enter(_:)``), then the waiting items it unblocks (``nextSuccessor()``).
        case log
    }

    /// The sequence of the channel's newest logged item.
    private(set) var lastSequence: Int64
    /// The chain position.
    private(set) var chainLastId: String?
    /// The items waiting, in arrival order.
    private(set) var waiting: [WaitingItem]
    /// Items and bytes this batch logged.
    private(set) var addedItems = 0
    private(set) var addedBytes = 0
    /// Whether this batch moved the chain position.
    private(set) var chainChanged = false

    init(lastSequence: Int64, chainLastId: String?, waiting: [WaitingItem]) {
        self.lastSequence = lastSequence
        self.chainLastId = chainLastId
        self.waiting = waiting
    }

    /// Whether this batch changed what the channel's row records (sequence, counts, chain position).
    var changed: Bool { self.addedItems > 0 || self.chainChanged }

    /// Where a new item goes (the writer has checked first that its id is not in the log).
    func step(for item: NewItem) -> Step {
        guard let id = item.id else {
            return .log
        }
        if self.waiting.contains(where: { $0.item.id == id }) {
            return .alreadyWaiting
        }
        guard !item.bypassesReordering, let prevId = item.prevId, let chainLastId = self.chainLastId,
            prevId != chainLastId
        else {
            return .log
        }
        let waits =
            self.waiting.count < Self.maxWaiting && !self.waiting.contains(where: { $0.item.prevId == prevId })
        return waits ? .wait : .log
    }

    /// Puts an item into the reordering buffer.
    mutating func wait(_ item: NewItem, receivedAt: Int64) {
        self.waiting.append(WaitingItem(item: item, receivedAt: receivedAt))
    }

    /// Logs an item: returns its sequence (the next one), and moves the chain position to its id unless it bypasses
    /// reordering (an item without an id clears it).
    mutating func enter(_ item: NewItem) -> Int64 {
        self.lastSequence += 1
        self.addedItems += 1
        self.addedBytes += item.size
        if !item.bypassesReordering {
            self.chainLastId = item.id
            self.chainChanged = true
        }
        return self.lastSequence
    }

    /// Takes out of the buffer the waiting item that follows the chain position, if any: the caller logs it
    /// (``enter(_:)``) and asks again.
    mutating func nextSuccessor() -> WaitingItem? {
        guard let last = self.chainLastId, let index = self.waiting.firstIndex(where: { $0.item.prevId == last })
        else {
            return nil
        }
        return self.waiting.remove(at: index)
    }

    /// Takes out of the buffer the oldest waiting item if it was received at or before `receivedThrough`: its wait
    /// is over; the caller logs it, then its successors, and asks again.
    mutating func nextExpired(receivedThrough: Int64) -> WaitingItem? {
        guard let first = self.waiting.first, first.receivedAt <= receivedThrough else {
            return nil
        }
        return self.waiting.removeFirst()
    }
}
