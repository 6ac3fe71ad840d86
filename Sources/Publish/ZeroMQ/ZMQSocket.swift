import CZeroMQ
import Foundation

/// One libzmq socket. Not thread-safe: one thread uses it at a time. It is created and bound on the thread
/// that starts P-8 and then handed, once, to the ``ZMQSocketLoop`` thread that owns it until it is closed.
// @unchecked: libzmq allows a socket to move between threads with a full memory barrier between uses
// (zmq(7)); the hand-over is a thread start, and only the owning thread touches it afterwards.
package final class ZMQSocket: @unchecked Sendable {
    /// The socket types P-8 uses.
    package enum Kind: Sendable {
        case pull, push, sub, pub, xpub, router, req, dealer

        var value: Int32 {
            switch self {
            case .pull: return ZMQ_PULL
            case .push: return ZMQ_PUSH
            case .sub: return ZMQ_SUB
            case .pub: return ZMQ_PUB
            case .xpub: return ZMQ_XPUB
            case .router: return ZMQ_ROUTER
            case .req: return ZMQ_REQ
            case .dealer: return ZMQ_DEALER
            }
        }
    }

    private let context: ZMQContext
    private var handle: UnsafeMutableRawPointer?

    /// Creates a socket of `kind` with `ZMQ_LINGER` 0, so that closing it never waits for unsent messages.
    ///
    /// - Throws: ``ZMQError``.
    package init(_ kind: Kind, context: ZMQContext) throws {
        guard let handle = zmq_socket(context.handle, kind.value) else {
            throw ZMQError("zmq_socket")
        }
        self.context = context
        self.handle = handle
        try self.setOption(ZMQ_LINGER, 0)
    }

    deinit {
        self.close()
    }

    /// Closes the socket; later calls do nothing.
    package func close() {
        if let handle = self.handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    private var socket: UnsafeMutableRawPointer {
        guard let handle = self.handle else {
            preconditionFailure("ZMQSocket used after close")
        }
        return handle
    }

    /// The socket for `zmq_poll`.
    var pollHandle: UnsafeMutableRawPointer {
        self.socket
    }

    // MARK: - Endpoints

    /// Binds to `spec` (`tcp://host:port`, `ipc://path`, `inproc://name`). For `ipc://` the socket file's
    /// directory is created first.
    ///
    /// - Throws: ``ZMQError`` (address in use, bad spec), or the file system's error for the directory.
    package func bind(_ spec: String) throws {
        if spec.hasPrefix("ipc://") {
            let path = String(spec.dropFirst("ipc://".count))
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        }
        guard zmq_bind(self.socket, spec) == 0 else {
            throw ZMQError("bind \(spec)")
        }
    }

    /// Connects to `spec`; libzmq connects (and reconnects) in the background.
    ///
    /// - Throws: ``ZMQError`` for a bad spec.
    package func connect(_ spec: String) throws {
        guard zmq_connect(self.socket, spec) == 0 else {
            throw ZMQError("connect \(spec)")
        }
    }

    /// The endpoint of the last bind, with a wildcard port resolved (`tcp://127.0.0.1:*` →
    /// `tcp://127.0.0.1:40123`).
    package var lastEndpoint: String? {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(self.socket, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            return nil
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Options

    /// Sets an integer option.
    ///
    /// - Throws: ``ZMQError``.
    package func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(self.socket, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError("zmq_setsockopt \(option)")
        }
    }

    /// Sets a binary option (`ZMQ_SUBSCRIBE`, `ZMQ_UNSUBSCRIBE`, `ZMQ_ROUTING_ID`).
    ///
    /// - Throws: ``ZMQError``.
    package func setOption(_ option: Int32, _ value: [UInt8]) throws {
        let result = value.withUnsafeBytes { buffer in
            zmq_setsockopt(self.socket, option, buffer.baseAddress, buffer.count)
        }
        guard result == 0 else {
            throw ZMQError("zmq_setsockopt \(option)")
        }
    }

    /// SUB sockets: receive messages whose first frame starts with `prefix` (libzmq counts subscriptions).
    ///
    /// - Throws: ``ZMQError``.
    package func subscribe(_ prefix: [UInt8]) throws {
        try self.setOption(ZMQ_SUBSCRIBE, prefix)
    }

    /// SUB sockets: undoes one ``subscribe(_:)`` of `prefix`.
    ///
    /// - Throws: ``ZMQError``.
    package func unsubscribe(_ prefix: [UInt8]) throws {
        try self.setOption(ZMQ_UNSUBSCRIBE, prefix)
    }

    // MARK: - Messages

    /// Sends a multipart message.
    ///
    /// - Parameter wait: false to fail with `EAGAIN` instead of blocking when the socket cannot send now.
    /// - Throws: ``ZMQError``.
    package func send(_ frames: [[UInt8]], wait: Bool = true) throws {
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = wait ? 0 : ZMQ_DONTWAIT
            if index < frames.count - 1 {
                flags |= ZMQ_SNDMORE
            }
            let result = frame.withUnsafeBytes { buffer in
                zmq_send(self.socket, buffer.baseAddress, buffer.count, flags)
            }
            guard result >= 0 else {
                throw ZMQError("zmq_send")
            }
        }
    }

    /// Receives one multipart message.
    ///
    /// - Parameter wait: false to return nil at once when no message is waiting.
    /// - Returns: the frames, or nil when `wait` is false and nothing is waiting.
    /// - Throws: ``ZMQError`` (`ETERM`, `EINTR` while blocked).
    package func receive(wait: Bool = true) throws -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        repeat {
            // Later frames of a message are already there (messages are atomic), so only the first may wait.
            let flags: Int32 = wait || !frames.isEmpty ? 0 : ZMQ_DONTWAIT
            guard zmq_msg_recv(&message, self.socket, flags) >= 0 else {
                if frames.isEmpty, zmq_errno() == EAGAIN {
                    return nil
                }
                throw ZMQError("zmq_msg_recv")
            }
            let size = zmq_msg_size(&message)
            if size == 0 {
                frames.append([])
            } else {
                let data = zmq_msg_data(&message)!.assumingMemoryBound(to: UInt8.self)
                frames.append(Array(UnsafeBufferPointer(start: data, count: size)))
            }
        } while zmq_msg_more(&message) != 0
        return frames
    }
}
