import NIOHTTP1

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1), so a proxy must not
/// forward them, plus every header the `Connection` header names.
enum HopByHopHeaders {
    static let names: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Removes the hop-by-hop headers, and the ones listed in `Connection`, from `headers`.
    static func remove(from headers: inout HTTPHeaders) {
        for listed in headers[canonicalForm: "connection"] {
            headers.remove(name: String(listed))
        }
        for name in Self.names {
            headers.remove(name: name)
        }
    }
}

extension String {
    /// Whether this header name starts with `Grip-`, in any case, without allocating.
    var isGripHeaderName: Bool {
        var utf8 = self.utf8.makeIterator()
        for expected in "grip-".utf8 {
            guard let byte = utf8.next(), byte | 0x20 == expected | 0x20 else { return false }
        }
        return true
    }
}

extension HTTPHeaders {
    /// Removes every `Grip-*` header.
    mutating func removeGripHeaders() {
        guard self.contains(where: { $0.name.isGripHeaderName }) else { return }
        let names = Set(self.lazy.map(\.name).filter(\.isGripHeaderName))
        for name in names {
            self.remove(name: name)
        }
    }
}
