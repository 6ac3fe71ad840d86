import Foundation
import GRIP
import Glibc

/// The listening TCP sockets the runner binds once and every server process it starts inherits.
struct ListenSockets {
    /// One bound, listening socket: its role in `P8_LISTEN_FDS` (`http.0`, `publish`, ...) and descriptor.
    struct Socket {
        var role: String
        var fd: CInt
    }

    private(set) var sockets: [Socket] = []

    /// Binds `address` for `role`. A port still held by a server that is being killed (its runner was just
    /// killed) is retried for up to two seconds.
    mutating func bind(_ address: ListenAddress, role: String) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let host = address.host.isEmpty || address.host == "*" ? nil : address.host
        let status = getaddrinfo(host, String(address.port), &hints, &result)
        guard status == 0, let info = result else {
            throw ListenError("cannot resolve \(address): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        // Not close-on-exec: the server process inherits it.
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else {
            throw ListenError("socket for \(address): \(String(cString: strerror(errno)))")
        }
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        let deadline = Date().addingTimeInterval(2)
        while Glibc.bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            let error = errno
            if error == EADDRINUSE && Date() < deadline {
                usleep(20_000)
                continue
            }
            close(fd)
            throw ListenError("cannot bind \(address): \(String(cString: strerror(error)))")
        }
        guard listen(fd, 1024) == 0 else {
            let error = errno
            close(fd)
            throw ListenError("cannot listen on \(address): \(String(cString: strerror(error)))")
        }
        self.sockets.append(Socket(role: role, fd: fd))
    }

    /// `P8_LISTEN_FDS` for the server.
    var environmentValue: String {
        self.sockets.map { "\($0.role)=\($0.fd)" }.joined(separator: ",")
    }

    func closeAll() {
        for socket in self.sockets {
            close(socket.fd)
        }
    }
}

struct ListenError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
