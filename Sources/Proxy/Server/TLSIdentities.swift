import Foundation
package import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The certificates of the TLS client ports, read from `runner/certs` as Pushpin's connection manager reads them:
/// `<name>.crt` (PEM chain) with `<name>.key` (PEM key), where the name is a server name (`www.example.com`), a
/// wildcard (`_.example.com` answers `*.example.com`, one label deep) or `default_<port>` (the certificate for
/// clients on that port whose SNI names no known host, or who send none). Re-read with ``reload()`` (on SIGHUP);
/// a handshake always uses the current set.
package final class TLSIdentities: Sendable {
    struct Identity: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
    }

    private struct Table: Sendable {
        var exact: [String: Identity] = [:]
        var wildcard: [String: Identity] = [:]
        var defaults: [Int: Identity] = [:]
    }

    private let directory: String
    private let logger: Logger
    private let table = Mutex(Table())

    package init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    /// Reads the directory again; a certificate that cannot be read is one warning line and is left out.
    ///
    /// - Returns: the number of identities loaded.
    @discardableResult
    package func reload() -> Int {
        var table = Table()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: self.directory)) ?? []
        var loaded = 0
        for file in names.sorted() where file.hasSuffix(".crt") {
            let name = String(file.dropLast(4))
            let base = (self.directory as NSString).appendingPathComponent(name)
            let identity: Identity
            do {
                identity = try Self.load(certificate: base + ".crt", key: base + ".key")
            } catch {
                self.logger.warning(
                    "TLS certificate \(name) not usable (\(base).crt with \(base).key): \(error)"
                )
                continue
            }
            loaded += 1
            if name.hasPrefix("default_"), let port = Int(name.dropFirst("default_".count)) {
                table.defaults[port] = identity
            } else if name.hasPrefix("_.") {
                table.wildcard[String(name.dropFirst(2)).lowercased()] = identity
            } else {
                table.exact[name.lowercased()] = identity
            }
        }
        self.table.withLock { $0 = table }
        return loaded
    }

    /// The identity for a client of `port` that asked for `serverName`: the exact name, else a wildcard one
    /// label up, else the port's default.
    func identity(serverName: String?, port: Int) -> Identity? {
        self.table.withLock { table in
            if let name = serverName?.lowercased() {
                if let exact = table.exact[name] {
                    return exact
                }
                if let dot = name.firstIndex(of: "."),
                    let wildcard = table.wildcard[String(name[name.index(after: dot)...])]
                {
                    return wildcard
                }
            }
            return table.defaults[port]
        }
    }

    /// The TLS context of a listener on `port`: it starts from the port's default (or any identity) and picks
    /// the identity for each handshake's SNI name.
    ///
    /// - Throws: ``TLSListenerError`` when there is no certificate at all for the port.
    func serverContext(port: Int) throws -> NIOSSLContext {
        let start = self.table.withLock { table in
            table.defaults[port] ?? table.exact.values.first ?? table.wildcard.values.first
        }
        guard let start else {
            throw TLSListenerError(
                "no TLS certificate for https port \(port): put default_\(port).crt and default_\(port).key "
                    + "(PEM) in \(self.directory)"
            )
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: start.chain.map { .certificate($0) },
            privateKey: .privateKey(start.key)
        )
        configuration.applicationProtocols = ["http/1.1"]
        configuration.sslContextCallback = { [self] values, promise in
            guard let identity = self.identity(serverName: values.serverHostname, port: port) else {
                promise.fail(TLSListenerError("no certificate for \(values.serverHostname ?? "a client without SNI")"))
                return
            }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = identity.chain.map { .certificate($0) }
            override.privateKey = .privateKey(identity.key)
            promise.succeed(override)
        }
        return try NIOSSLContext(configuration: configuration)
    }

    private static func load(certificate: String, key: String) throws -> Identity {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate)
        guard !chain.isEmpty else {
            throw TLSListenerError("no certificate in the file")
        }
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        let identity = Identity(chain: chain, key: privateKey)
        // A key that does not match its certificate is refused here, not at a client's handshake.
        _ = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) },
                privateKey: .privateKey(privateKey)
            )
        )
        return identity
    }
}

/// A TLS listener that cannot start, or a handshake without a certificate.
package struct TLSListenerError: Error, CustomStringConvertible {
    package var description: String

    init(_ description: String) {
        self.description = description
    }
}
