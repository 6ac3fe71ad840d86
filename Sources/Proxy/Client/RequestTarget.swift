/// The host and path a request is routed by: from an absolute-form request target if the client sent one,
/// else from the `Host` header, with the port stripped (grip-spec §2.2).
struct RequestTarget: Equatable {
    var host: String
    /// The path without the query, as sent (percent-encoded form).
    var path: String
    /// The request target in origin form (path and query), as sent to a backend.
    var originForm: String

    init(uri: String, hostHeader: String?) {
        var rest = Substring(uri)
        var authority: Substring?
        let isOriginForm = uri.utf8.first == UInt8(ascii: "/")
        for scheme in ["http://", "https://", "ws://", "wss://"]
        where !isOriginForm && rest.lowercased().hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            authority = rest[..<end]
            rest = rest[end...]
            break
        }
        let pathEnd = rest.firstIndex(of: "?") ?? rest.endIndex
        let path = rest[..<pathEnd]
        self.path = path.isEmpty ? "/" : String(path)
        self.originForm = self.path + rest[pathEnd...]
        self.host = Self.hostWithoutPort(String(authority ?? Substring(hostHeader ?? "")))
    }

    static func hostWithoutPort(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[...close])
        }
        if let colon = authority.lastIndex(of: ":") {
            return String(authority[..<colon])
        }
        return authority
    }
}
