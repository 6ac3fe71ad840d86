import Foundation
import Glibc

/// The Unix socket over which a server hands its client connections to the server that replaces it: each message
/// is a client socket (passed with `SCM_RIGHTS`) and what the new server needs to continue it (JSON), then an end
/// marker; the old server keeps the socket open until it exits, so that its end of file tells the new server that
/// the database and the ZeroMQ sockets are free. Blocking I/O: one thread on each side uses it, once.
///
/// The socket lives in the rundir with mode 0600, and each side checks that its peer runs as the same user: no
/// other local user can receive a client's socket, nor pass one in.
package final class HandoverSocket: Sendable {
    package let descriptor: CInt

    private init(descriptor: CInt) {
        self.descriptor = descriptor
    }

    deinit {
        Glibc.close(self.descriptor)
    }

    /// What a receive returns.
    package enum Message {
        /// A client connection: its socket and description.
        case connection(descriptor: CInt, payload: [UInt8])
        /// Every connection has been sent.
        case end
        /// The other side closed the socket (exited).
        case closed
    }

    // MARK: - Setting up

    /// Listens at `path` (a stale socket there is replaced), mode 0600.
    package static func listen(path: String) throws(HandoverError) -> HandoverListener {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HandoverError("socket", errno: errno) }
        unlink(path)
        let previousMask = umask(0o077)
        let bound = Self.withAddress(path) { bind(fd, $0, $1) }
        umask(previousMask)
        guard bound == 0, chmod(path, 0o600) == 0, Glibc.listen(fd, 1) == 0 else {
            let error = HandoverError("bind \(path)", errno: errno)
            Glibc.close(fd)
            throw error
        }
        return HandoverListener(descriptor: fd, path: path)
    }

    /// Connects to the new server's socket at `path`.
    package static func connect(path: String) throws(HandoverError) -> HandoverSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HandoverError("socket", errno: errno) }
        let socket = HandoverSocket(descriptor: fd)
        guard Self.withAddress(path, { Glibc.connect(fd, $0, $1) }) == 0 else {
            throw HandoverError("connect \(path)", errno: errno)
        }
        try socket.checkPeerIsSameUser()
        return socket
    }

    fileprivate static func accepted(_ fd: CInt) throws(HandoverError) -> HandoverSocket {
        let socket = HandoverSocket(descriptor: fd)
        try socket.checkPeerIsSameUser()
        return socket
    }

    private func checkPeerIsSameUser() throws(HandoverError) {
        // `struct ucred` (pid, uid, gid), which Glibc's module leaves out without _GNU_SOURCE.
        var credentials: (pid: pid_t, uid: uid_t, gid: gid_t) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(pid_t, uid_t, gid_t)>.size)
        guard getsockopt(self.descriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            throw HandoverError("SO_PEERCRED", errno: errno)
        }
        guard credentials.uid == getuid() else {
            throw HandoverError("the peer runs as uid \(credentials.uid), not \(getuid())")
        }
    }

    private static func withAddress(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) -> CInt
    ) -> CInt {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            errno = ENAMETOOLONG
            return -1
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    // MARK: - Messages

    /// A message's header: the payload's length, and its kind.
    private static let headerSize = 8
    private static let kindConnection: UInt32 = 1
    private static let kindEnd: UInt32 = 2

    /// `cmsghdr`'s size rounded up to `size_t` (`CMSG_ALIGN`): where the passed descriptor starts.
    private static let controlHeaderSpace =
        (MemoryLayout<cmsghdr>.size + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1)
    /// `CMSG_SPACE(sizeof(int))` and `CMSG_LEN(sizeof(int))`.
    private static let controlSpace =
        HandoverSocket.controlHeaderSpace
        + ((MemoryLayout<CInt>.size + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1))
    private static let controlLength = HandoverSocket.controlHeaderSpace + MemoryLayout<CInt>.size

    /// Sends a client socket (which the receiver then owns a duplicate of) and its description.
    package func send(descriptor: CInt, payload: [UInt8]) throws(HandoverError) {
        var header = Self.header(kind: Self.kindConnection, length: payload.count)
        var control = [UInt8](repeating: 0, count: Self.controlSpace)
        let sent = header.withUnsafeMutableBytes { headerBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: headerBytes.baseAddress, iov_len: headerBytes.count)
                let message = controlBytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                message.pointee.cmsg_len = Self.controlLength
                message.pointee.cmsg_level = SOL_SOCKET
                message.pointee.cmsg_type = CInt(SCM_RIGHTS)
                controlBytes.storeBytes(of: descriptor, toByteOffset: Self.controlHeaderSpace, as: CInt.self)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = controlBytes.baseAddress
                    header.msg_controllen = controlBytes.count
                    return sendmsg(self.descriptor, &header, CInt(MSG_NOSIGNAL))
                }
            }
        }
        guard sent == Self.headerSize else { throw HandoverError("sendmsg", errno: errno) }
        try self.writeAll(payload)
    }

    /// Sends the end marker: every connection has been sent.
    package func sendEnd() throws(HandoverError) {
        try self.writeAll(Self.header(kind: Self.kindEnd, length: 0))
    }

    /// Receives the next message; a passed descriptor is the caller's (close-on-exec).
    package func receive() throws(HandoverError) -> Message {
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        var control = [UInt8](repeating: 0, count: Self.controlSpace)
        var descriptor: CInt?
        let received = header.withUnsafeMutableBytes { headerBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: headerBytes.baseAddress, iov_len: headerBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    let count = recvmsg(self.descriptor, &message, CInt(MSG_CMSG_CLOEXEC) | CInt(MSG_WAITALL))
                    if count > 0, message.msg_controllen >= Self.controlLength {
                        let control = controlBytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                        if control.pointee.cmsg_level == SOL_SOCKET, control.pointee.cmsg_type == CInt(SCM_RIGHTS) {
                            descriptor = controlBytes.load(fromByteOffset: Self.controlHeaderSpace, as: CInt.self)
                        }
                    }
                    return count
                }
            }
        }
        if received == 0 {
            return .closed
        }
        guard received == Self.headerSize else {
            if let descriptor { Glibc.close(descriptor) }
            throw HandoverError(received < 0 ? "recvmsg" : "a short message header", errno: errno)
        }
        let kind = header.withUnsafeBytes { $0.load(fromByteOffset: 4, as: UInt32.self) }
        let length = Int(header.withUnsafeBytes { $0.load(as: UInt32.self) })
        switch kind {
        case Self.kindEnd:
            if let descriptor { Glibc.close(descriptor) }
            return .end
        case Self.kindConnection:
            guard let descriptor else { throw HandoverError("a connection message without its socket") }
            do {
                return .connection(descriptor: descriptor, payload: try self.readExactly(length))
            } catch {
                Glibc.close(descriptor)
                throw error
            }
        default:
            if let descriptor { Glibc.close(descriptor) }
            throw HandoverError("an unknown message kind \(kind)")
        }
    }

    private static func header(kind: UInt32, length: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        header.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: UInt32(length), as: UInt32.self)
            bytes.storeBytes(of: kind, toByteOffset: 4, as: UInt32.self)
        }
        return header
    }

    private func writeAll(_ bytes: [UInt8]) throws(HandoverError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                Glibc.send(self.descriptor, raw.baseAddress! + offset, raw.count - offset, CInt(MSG_NOSIGNAL))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw HandoverError("send", errno: errno) }
            offset += count
        }
    }

    private func readExactly(_ length: Int) throws(HandoverError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        var offset = 0
        while offset < length {
            let count = bytes.withUnsafeMutableBytes { raw in
                recv(self.descriptor, raw.baseAddress! + offset, length - offset, 0)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                throw HandoverError(count == 0 ? "the socket closed mid-message" : "recv", errno: errno)
            }
            offset += count
        }
        return bytes
    }
}

/// The new server's listening end of the hand-over socket; removes the socket file when done.
package final class HandoverListener: Sendable {
    let descriptor: CInt
    let path: String

    init(descriptor: CInt, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit {
        Glibc.close(self.descriptor)
        unlink(self.path)
    }

    /// Waits at most `timeout` seconds for the old server to connect.
    package func accept(timeout: Double) throws(HandoverError) -> HandoverSocket {
        var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            let ready = poll(&poller, 1, left)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw HandoverError("no server connected to hand its connections over") }
            break
        }
        let fd = Glibc.accept(self.descriptor, nil, nil)
        guard fd >= 0 else { throw HandoverError("accept", errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return try HandoverSocket.accepted(fd)
    }
}

/// A hand-over that could not be made.
package struct HandoverError: Error, CustomStringConvertible {
    package var description: String

    init(_ what: String) {
        self.description = what
    }

    init(_ what: String, errno code: CInt) {
        self.description = "\(what): \(String(cString: strerror(code)))"
    }
}
