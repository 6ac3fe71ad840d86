import CZeroMQ

/// A libzmq context: the I/O threads every socket of the process shares. Terminated when the last socket
/// made from it is gone.
// A libzmq context is thread-safe (zmq(7)), and the pointer never changes.
package final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// Creates a context.
    ///
    /// - Throws: ``ZMQError`` when libzmq cannot create one (no memory, too many files).
    package init() throws {
        guard let handle = zmq_ctx_new() else {
            throw ZMQError("zmq_ctx_new")
        }
        self.handle = handle
    }

    deinit {
        zmq_ctx_term(self.handle)
    }
}
