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
