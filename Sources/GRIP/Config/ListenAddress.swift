/// An address to listen on: `[runner] http_port` entries and the runner's `--port`.
package struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address to bind: an IPv4 or IPv6 literal (IPv6 without brackets) or a host name.
    package var host: String
    /// The port, 0...65535; 0 asks the system for an ephemeral port (used by tests).
    package var port: Int

    /// Creates an address from its parts (not validated).
    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `port`, `addr:port` or `[ipv6]:port`.
    ///
    /// - Parameters:
    ///   - text: the address; surrounding whitespace is ignored.
    ///   - defaultHost: the host used when `text` is a bare port (Pushpin's default `0.0.0.0`).
    /// - Throws: ``ConfigError`` with code `invalidListenAddress` when the text is malformed or the port is
    ///   outside 0...65535.
    package init(parsing text: String, defaultHost: String = "0.0.0.0") throws(ConfigError) {
        let text = text.trimmingINIWhitespace()
        let host: String
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                text.index(after: close) < text.endIndex,
                text[text.index(after: close)] == ":"
            else {
                throw ConfigError(.invalidListenAddress, "\"\(text)\" is not a valid [ipv6]:port address")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else {
                throw ConfigError(
                    .invalidListenAddress,
                    "\"\(text)\" is ambiguous: write IPv6 addresses as [addr]:port"
                )
            }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        } else {
            host = defaultHost
            portText = Substring(text)
        }
        guard !host.isEmpty, !host.contains(" ") else {
            throw ConfigError(.invalidListenAddress, "\"\(text)\" has no host before the port")
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigError(.invalidListenAddress, "\"\(text)\" does not end with a port in 0...65535")
        }
        self.host = host
        self.port = port
    }

    /// `host:port`, or `[host]:port` for IPv6.
    package var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }
}
