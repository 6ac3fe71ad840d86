/// `[runner] https_ports`: TLS client listeners, and the directory their certificates are read from (grip-spec
/// §8.2): `<name>.crt` with `<name>.key`, where the name is a server name (`www.example.com`), a wildcard
/// (`_.example.com` for `*.example.com`) or `default_<port>`, the certificate for clients that name no known host.
package struct TLSListenConfiguration: Sendable, Hashable {
    /// The TLS listeners (never shifted by `port_offset`, as `http_port`).
    package var listeners: [ListenAddress]
    /// Absolute path of `runner/certs` beside the config file.
    package var certsDirectory: String

    package init(listeners: [ListenAddress] = [], certsDirectory: String) {
        self.listeners = listeners
        self.certsDirectory = certsDirectory
    }
}
