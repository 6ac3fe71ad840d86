import Logging
import Proxy
import ServiceLifecycle
import UnixSignals

/// Re-reads the TLS client ports' certificates on SIGHUP (with the routes); new handshakes use the new set.
struct CertificateReloadService: Service {
    let identities: TLSIdentities
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            let count = self.identities.reload()
            self.logger.info("TLS certificates reloaded", metadata: ["p8.tls.certificates": "\(count)"])
        }
    }
}
