import Glibc
import Synchronization

/// The process's file descriptors, kept below its limit (`RLIMIT_NOFILE`).
///
/// At the limit more fails than P-8's own calls: libdispatch's worker-pool monitor, under Swift concurrency,
/// opens `/proc/<pid>/task/<tid>/stat` about once a second and crashes the process (SIGILL, no message) when it
/// cannot. So P-8 counts the sockets it holds by the thousand: client connections, backend connections, and
/// sockets on their way to a new server in a hand-over. It refuses one more once only ``reserve`` descriptors
/// would be left: a client connection is then closed as it arrives, and a backend connection fails, which the
/// client sees as a 502. The reserve covers the few other descriptors P-8 opens (database files, ZeroMQ, the
/// publish API's connections, the hand-over socket).
package final class DescriptorBudget: Sendable {
    /// The limit, and what is kept free below it.
    package let limit: Int
    package let reserve: Int
    /// Descriptors open before the first counted one (listeners, the database, event loops).
    private let baseline: Int
    private let counted = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)

    package init(limit: Int, baseline: Int, reserve: Int? = nil) {
        self.limit = limit
        self.baseline = baseline
        self.reserve = reserve ?? max(64, limit / 20)
    }

    /// The budget of this process: its soft limit raised to the hard one first (as Go and nginx's
    /// `worker_rlimit_nofile` do), and what is open now as the baseline, less `notCounting` descriptors open now
    /// that the caller counts itself (sockets an earlier server handed over).
    package static func forThisProcess(notCounting: Int = 0) -> DescriptorBudget {
        // Less the listing's own descriptor.
        let baseline = max(0, SocketDescriptors.open().count - 1 - notCounting)
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else {
            return DescriptorBudget(limit: 1024, baseline: baseline)
        }
        // An unlimited hard limit is still bounded by the kernel's `nr_open` (1,048,576 by default).
        let ceiling = min(limits.rlim_max, 1 << 20)
        if limits.rlim_cur < ceiling {
            var raised = limits
            raised.rlim_cur = ceiling
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                limits = raised
            }
        }
        return DescriptorBudget(limit: Int(limits.rlim_cur), baseline: baseline)
    }

    /// Counts one more descriptor if the budget allows it.
    package func take() -> Bool {
        let capacity = self.limit - self.reserve - self.baseline
        var current = self.counted.load(ordering: .relaxed)
        while current < capacity {
            let (exchanged, original) = self.counted.compareExchange(
                expected: current,
                desired: current + 1,
                ordering: .relaxed
            )
            if exchanged { return true }
            current = original
        }
        self.refused.add(1, ordering: .relaxed)
        return false
    }

    /// Counts a descriptor that exists already and must be kept (a duplicate made for a hand-over, a socket a
    /// hand-over passed): the budget may go over, so that the next ``take()`` refuses.
    package func takeRegardless() {
        self.counted.add(1, ordering: .relaxed)
    }

    package func give() {
        self.counted.subtract(1, ordering: .relaxed)
    }

    /// Descriptors counted now, and how many were refused since the start.
    package var inUse: Int { self.counted.load(ordering: .relaxed) }
    package var refusals: Int { self.refused.load(ordering: .relaxed) }

    /// Whether this refusal is the first (or a thousandth one): worth a warning, not a line per connection.
    package func refusalWorthLogging() -> Bool {
        self.refusals % 1000 == 1
    }
}
