import Glibc
import NIOCore

extension Duration {
    /// The duration in seconds.
    package var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// This process's TCP sockets by their addresses: NIO does not tell a channel's descriptor, so the hand-over finds
/// each in `/proc/self/fd`.
enum SocketDescriptors {
    /// The process's open descriptors, as `/proc/self/fd` lists them (the listing's own included); empty when it
    /// cannot be read.
    static func open() -> [CInt] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        var descriptors: [CInt] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let descriptor = CInt(name) {
                descriptors.append(descriptor)
            }
        }
        return descriptors
    }

    /// Every connected TCP socket's descriptor, by ``key(local:remote:)``.
    static func scan() -> [String: CInt] {
        var found: [String: CInt] = [:]
        for descriptor in Self.open() {
            var local = sockaddr_storage()
            var remote = sockaddr_storage()
            guard Self.address(of: descriptor, into: &local, getsockname),
                Self.address(of: descriptor, into: &remote, getpeername),
                let localText = Self.text(local), let remoteText = Self.text(remote)
            else { continue }
            found[localText + ">" + remoteText] = descriptor
        }
        return found
    }

    static func key(local: SocketAddress?, remote: SocketAddress?) -> String? {
        guard let local, let remote, let localIP = local.ipAddress, let localPort = local.port,
            let remoteIP = remote.ipAddress, let remotePort = remote.port
        else { return nil }
        return "\(localIP):\(localPort)>\(remoteIP):\(remotePort)"
    }

    private static func address(
        of descriptor: CInt,
        into storage: inout sockaddr_storage,
        _ call: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt
    ) -> Bool {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(descriptor, $0, &length) == 0 }
        }
    }

    private static func string(_ characters: [CChar]) -> String {
        String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `ip:port` of an IPv4 or IPv6 address, as NIO's `SocketAddress` spells it (through `inet_ntop`).
    private static func text(_ storage: sockaddr_storage) -> String? {
        // sockaddr_in: family (2 bytes), port (2, network order), address (4); sockaddr_in6: family, port,
        // flow info (4), address (16).
        let (family, addressOffset): (CInt, Int)
        switch CInt(storage.ss_family) {
        case AF_INET: (family, addressOffset) = (AF_INET, 4)
        case AF_INET6: (family, addressOffset) = (AF_INET6, 8)
        default: return nil
        }
        return withUnsafeBytes(of: storage) { raw -> String? in
            let port = UInt16(raw[2]) << 8 | UInt16(raw[3])
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            guard inet_ntop(family, raw.baseAddress! + addressOffset, &buffer, socklen_t(buffer.count)) != nil else {
                return nil
            }
            return "\(Self.string(buffer)):\(port)"
        }
    }
}
