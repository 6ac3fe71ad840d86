import CZeroMQ

/// A libzmq call that failed, with the `errno` libzmq reported and its text.
package struct ZMQError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was being done (`bind tcp://127.0.0.1:5560`).
    package var operation: String
    /// libzmq's `errno` for the failure.
    package var code: Int32

    /// Captures `zmq_errno()` for `operation`; call right after the failing libzmq call.
    init(_ operation: String) {
        self.operation = operation
        self.code = zmq_errno()
    }

    /// `<operation>: <zmq_strerror>`.
    package var description: String {
        "\(self.operation): \(String(cString: zmq_strerror(self.code)))"
    }
}
