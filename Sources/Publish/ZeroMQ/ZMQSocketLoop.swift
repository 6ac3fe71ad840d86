import CZeroMQ
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The thread that owns one ``ZMQSocket``: it waits in `zmq_poll` (never on the cooperative pool), hands each
/// received message to `onMessage` on that thread, and runs the operations other threads queue with
/// ``perform(_:)`` (sends, subscriptions), in the order they were queued.
///
/// Other threads wake it through a pipe that it polls beside the socket, so queued operations and
/// ``stop()`` take effect at once.
package final class ZMQSocketLoop: Sendable {
    /// What the owning thread does with a received multipart message.
    package typealias MessageHandler = @Sendable (_ frames: [[UInt8]]) -> Void

    private struct State {
        var operations: [@Sendable (ZMQSocket) -> Void] = []
        var stopping = false
        var started = false
    }

    private let socket: ZMQSocket
    private let name: String
    private let onMessage: MessageHandler?
    private let isPaused: @Sendable () -> Bool
    private let state = Mutex(State())
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let finished: AsyncStream<Never>
    private let finish: AsyncStream<Never>.Continuation

    /// Most messages received in one go before queued operations run again.
    static let receiveBurst = 1000

    /// Creates a loop for `socket` (not started).
    ///
    /// - Parameters:
    ///   - name: the thread's name.
    ///   - onMessage: called on the loop's thread for each received message; nil for send-only sockets.
    ///   - isPaused: while it returns true the loop receives nothing (back-pressure: libzmq then queues, up to its
    ///     high-water mark, and the peer blocks or drops as its socket type says). Call ``wake()`` when it turns
    ///     false.
    /// - Throws: the system's error when the wake-up pipe cannot be made.
    package init(
        socket: ZMQSocket,
        name: String,
        onMessage: MessageHandler?,
        isPaused: @escaping @Sendable () -> Bool = { false }
    ) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        self.wakeRead = fds[0]
        self.wakeWrite = fds[1]
        self.socket = socket
        self.name = name
        self.onMessage = onMessage
        self.isPaused = isPaused
        (self.finished, self.finish) = AsyncStream.makeStream()
    }

    deinit {
        close(self.wakeRead)
        close(self.wakeWrite)
    }

    /// Starts the thread; later calls do nothing.
    package func start() {
        let first = self.state.withLock { state in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        let thread = Thread { [self] in
            self.loop()
        }
        thread.name = self.name
        thread.start()
    }

    /// Queues `operation` to run on the loop's thread with the socket.
    ///
    /// Only the first operation queued since the thread last took the queue wakes it: the thread runs everything
    /// queued when it wakes, so a burst (a `sub` stats message per hold as 10,000 requests arrive) costs one
    /// wake-up, not a pipe write and a thread switch each.
    package func perform(_ operation: @escaping @Sendable (ZMQSocket) -> Void) {
        let wasEmpty = self.state.withLock { state in
            defer { state.operations.append(operation) }
            return state.operations.isEmpty
        }
        if wasEmpty {
            self.wake()
        }
    }

    /// Makes the thread look at its queue and its pause condition now.
    package func wake() {
        var byte: UInt8 = 1
        // A full pipe already means "wake up"; nothing else can go wrong that matters here.
        _ = write(self.wakeWrite, &byte, 1)
    }

    /// Runs the operations queued so far, closes the socket and ends the thread; returns when it has ended.
    package func stop() async {
        let started = self.state.withLock { state in
            state.stopping = true
            return state.started
        }
        guard started else {
            self.socket.close()
            return
        }
        self.wake()
        for await _ in self.finished {}
    }

    private func loop() {
        defer {
            self.socket.close()
            self.finish.finish()
        }
        var items = [
            zmq_pollitem_t(socket: self.socket.pollHandle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
            zmq_pollitem_t(socket: nil, fd: self.wakeRead, events: Int16(ZMQ_POLLIN), revents: 0),
        ]
        while true {
            let (operations, stopping) = self.state.withLock { state in
                defer { state.operations = [] }
                return (state.operations, state.stopping)
            }
            for operation in operations {
                operation(self.socket)
            }
            if stopping {
                return
            }
            let receiving = self.onMessage != nil && !self.isPaused()
            items[0].events = receiving ? Int16(ZMQ_POLLIN) : 0
            items[0].revents = 0
            items[1].revents = 0
            // The timeout only bounds how long a missed wake-up could go unnoticed.
            guard zmq_poll(&items, 2, 1000) >= 0 else {
                continue  // EINTR; ETERM cannot happen while this thread holds a socket.
            }
            if items[1].revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 64)
                while read(self.wakeRead, &buffer, buffer.count) > 0 {}
            }
            if receiving, items[0].revents != 0, let onMessage = self.onMessage {
                for _ in 0..<Self.receiveBurst {
                    guard let frames = try? self.socket.receive(wait: false) else { break }
                    onMessage(frames)
                    if self.isPaused() { break }
                }
            }
        }
    }
}
