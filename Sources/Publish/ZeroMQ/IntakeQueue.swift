import Synchronization

/// A first-in first-out hand-over from a socket thread to one async consumer that takes everything queued at
/// once, so items that arrive while a commit is in progress go into the next commit together, in arrival order.
final class IntakeQueue<Element: Sendable>: Sendable {
    private struct State {
        var elements: [Element] = []
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
    }

    private let state = Mutex(State())

    /// Elements waiting for the consumer.
    var count: Int {
        self.state.withLock { $0.elements.count }
    }

    /// Adds an element (from any thread).
    func append(_ element: Element) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.elements.append(element)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Wakes the consumer for good: ``next(limit:)`` returns what is left, then an empty batch.
    func finish() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Waits until elements are queued and takes up to `limit` of them, oldest first. Returns an empty batch
    /// once the queue is finished (or the task cancelled) and empty. One consumer at a time.
    func next(limit: Int) async -> [Element] {
        while true {
            let batch = self.state.withLock { state -> [Element]? in
                guard !state.elements.isEmpty else {
                    return state.finished ? [] : nil
                }
                let taken = Array(state.elements.prefix(limit))
                state.elements.removeFirst(taken.count)
                return taken
            }
            if let batch {
                return batch
            }
            if Task.isCancelled {
                return []
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if !state.elements.isEmpty || state.finished {
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow {
                        continuation.resume()
                    }
                }
            } onCancel: {
                self.finish()
            }
        }
    }
}
