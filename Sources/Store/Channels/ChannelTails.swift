import Synchronization

/// The newest items of recently appended channels, so that most resume reads need no query.
///
/// A channel's tail holds its newest items, contiguous, ending at its last sequence: only appends committed by
/// this process fill it (after COMMIT, on the writer queue), and retention drops from it what it deletes. A read
/// is answered here only when the cursor falls inside the tail; anything else goes to the database.
final class ChannelTails: Sendable {
    private struct Tail {
        var items: [StoredItem]
        var lastUse: UInt64

        mutating func append(_ item: StoredItem, keeping limit: Int, at clock: UInt64) {
            // A gap (another writer's items, which this process never saw) would break the index arithmetic of
            // `read`: the tail starts again from this item, and reads before it go to the database.
            if let last = self.items.last, item.sequence != last.sequence + 1 {
                self.items.removeAll()
            }
            if self.items.count >= limit {
                self.items.removeFirst(self.items.count - limit + 1)
            }
            self.items.append(item)
            self.lastUse = clock
        }
    }

    private struct State {
        var tails: [String: Tail] = [:]
        var clock: UInt64 = 0
    }

    private let itemsPerChannel: Int
    private let maxChannels: Int
    private let state = Mutex(State())

    init(itemsPerChannel: Int, maxChannels: Int) {
        self.itemsPerChannel = itemsPerChannel
        self.maxChannels = maxChannels
    }

    /// Adds committed items, in commit order (each channel's items contiguous and increasing).
    func append(_ items: [StoredItem]) {
        if items.isEmpty {
            return
        }
        self.state.withLock { state in
            state.clock += 1
            let clock = state.clock
            for item in items {
                // Mutated in place (no copy of the tail's array).
                state.tails[item.channel, default: Tail(items: [], lastUse: clock)].append(
                    item,
                    keeping: self.itemsPerChannel,
                    at: clock
                )
            }
            if state.tails.count > self.maxChannels {
                // Evict the least recently used quarter.
                let byUse = state.tails.sorted { $0.value.lastUse < $1.value.lastUse }
                for (name, _) in byUse.prefix(state.tails.count - self.maxChannels * 3 / 4) {
                    state.tails[name] = nil
                }
            }
        }
    }

    /// Drops a channel's items up to and including `sequence` (they were trimmed).
    func drop(channel: String, through sequence: Int64) {
        self.state.withLock { state in
            guard var tail = state.tails[channel] else {
                return
            }
            tail.items.removeAll { $0.sequence <= sequence }
            state.tails[channel] = tail.items.isEmpty ? nil : tail
        }
    }

    /// Forgets every tail.
    func removeAll() {
        self.state.withLock { $0.tails = [:] }
    }

    /// The items after `cursor`, if the tail can tell; `nil` means ask the database.
    func read(channel: String, after cursor: Cursor, limit: Int) -> (items: [StoredItem], lastSequence: Int64)? {
        self.state.withLock { state -> (items: [StoredItem], lastSequence: Int64)? in
            guard var tail = state.tails[channel], let first = tail.items.first, let last = tail.items.last else {
                return nil
            }
            let after: Int64
            switch cursor {
            case .sequence(let sequence):
                after = sequence
            case .id(let id):
                guard let item = tail.items.last(where: { $0.id == id }) else {
                    return nil
                }
                after = item.sequence
            case .oldestRetained:
                return nil
            }
            guard after >= first.sequence - 1, after <= last.sequence else {
                return nil
            }
            state.clock += 1
            tail.lastUse = state.clock
            state.tails[channel] = tail
            let start = Int(after - first.sequence + 1)
            return (Array(tail.items[start...].prefix(max(limit, 0))), last.sequence)
        }
    }
}
