#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP port held by a socket that is bound but does not listen: a connect to it is refused for as long
/// as the value lives, and no other test's server can take the port meanwhile (a port bound and released at once
/// can be, before the connect). ``free()`` releases one at once, for a server about to bind it.
package final class LoopbackPort: Sendable {
    package let port: Int
    private let descriptor: CInt

    package init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && getsockname(descriptor, address, &length) == 0
            }
        }
        guard descriptor >= 0, bound else {
            close(descriptor)
            throw LoopbackPortError(description: "cannot bind a loopback port")
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(self.descriptor)
    }

    /// A port nothing is bound to now (bound, then released).
    package static func free() throws -> Int {
        try LoopbackPort().port
    }
}

package struct LoopbackPortError: Error, CustomStringConvertible {
    package var description: String
}
