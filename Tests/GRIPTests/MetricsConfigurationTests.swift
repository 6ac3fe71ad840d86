import GRIP
import Testing

@Suite struct MetricsConfigurationTests {
    @Test func unsetMeansNoEndpoint() throws {
        #expect(try TestSupport.parse("").metrics == MetricsConfiguration())
    }

    @Test func aBarePortListensEverywhereAndTheProxySectionWins() throws {
        let handlerOnly = try TestSupport.parse("[handler]\nprometheus_port=9100\nprometheus_prefix=h_")
        #expect(
            handlerOnly.metrics
                == MetricsConfiguration(listen: ListenAddress(host: "0.0.0.0", port: 9100), prefix: "h_")
        )
        let both = try TestSupport.parse(
            "[proxy]\nprometheus_port=127.0.0.1:9200\n[handler]\nprometheus_port=9100\nprometheus_prefix=h_"
        )
        #expect(
            both.metrics == MetricsConfiguration(listen: ListenAddress(host: "127.0.0.1", port: 9200), prefix: "h_")
        )
        #expect(both.warnings.isEmpty)
    }

    @Test func aMalformedPortIsAnError() {
        #expect(throws: ConfigError.self) { try TestSupport.parse("[proxy]\nprometheus_port=ipc://x") }
    }
}

@Suite struct TLSListenConfigurationTests {
    @Test func httpsPortsAndTheCertificatesBesideTheConfig() throws {
        let config = try TestSupport.parse("[runner]\nhttps_ports=443, 127.0.0.1:8443,443")
        #expect(
            config.runner.tls.listeners == [
                ListenAddress(host: "0.0.0.0", port: 443), ListenAddress(host: "127.0.0.1", port: 8443),
            ]
        )
        #expect(config.runner.tls.certsDirectory.hasSuffix("/runner/certs"))
        #expect(config.warnings.isEmpty)
        #expect(try TestSupport.parse("").runner.tls.listeners.isEmpty)
        #expect(throws: ConfigError.self) { try TestSupport.parse("[runner]\nhttps_ports=x:y") }
    }
}
