import Foundation
import NIOSSL
import P8TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// TLS client ports (`[runner] https_ports`) end to end: certificates made by `openssl` for each test in the
/// config's `runner/certs`, a real P-8, real TLS clients with and without SNI.
@Suite struct TLSClientPortTests {
    static let config = "[runner]\nhttps_ports=127.0.0.1:0"

    @Test func sniPicksTheCertificateAndAnUnknownNameGetsThePortsDefault() async throws {
        try await withTestBackend { backend in
            var certificates: [String: NIOSSLCertificate] = [:]
            try await withRunningP8Server(
                routes: ["*,ssl=yes 127.0.0.1:\(backend.port)"],
                config: Self.config,
                prepare: { directory in
                    for name in ["default_0", "www.example.com", "_.example.org"] {
                        certificates[name] = try TestCertificate.make(name: name, in: directory)
                    }
                }
            ) { p8 in
                let port = try #require(p8.httpsPorts.first)
                for (serverName, expected) in [
                    ("www.example.com", "www.example.com"), ("a.example.org", "_.example.org"),
                    ("b.a.example.org", "default_0"), ("other.test", "default_0"), (nil, "default_0"),
                ] as [(String?, String)] {
                    let client = try await RawHTTPConnection.connect(
                        port: port,
                        tls: (TestCertificate.client, serverName)
                    )
                    try await client.send("GET /plain?body=secure HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
                    let response = try await client.readResponse()
                    #expect(response.text == "secure", "\(serverName ?? "no SNI")")
                    #expect(try await client.peerCertificate() == certificates[expected], "\(serverName ?? "no SNI")")
                    await client.close()
                }
                // The backend hears that the client used TLS, with a Grip-Sig as on plain ports.
                let seen = try #require(backend.requests.last)
                #expect(seen.values("X-Forwarded-Proto") == ["https"])
                #expect(seen.values("Grip-Sig").count == 1)
                // The plain port does not match the ssl=yes route.
                let plain = try await RawHTTPConnection.connect(port: p8.httpPort)
                try await plain.send("GET /plain HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
                #expect(try await plain.readResponse().status == 502)
            }
        }
    }

    @Test func aStreamOverTLSGetsPublishedContent() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(
                routes: ["* 127.0.0.1:\(backend.port)"],
                config: Self.config,
                prepare: { _ = try TestCertificate.make(name: "default_0", in: $0) }
            ) { p8 in
                let port = try #require(p8.httpsPorts.first)
                let client = try await RawHTTPConnection.connect(port: port, tls: (TestCertificate.client, nil))
                try await client.send(
                    "GET /plain?header=Grip-Hold:stream&header=Grip-Channel:tls&body=open%0A HTTP/1.1\r\n"
                        + "Host: example.com\r\n\r\n"
                )
                #expect(try await client.readHead().status == 200)
                let deadline = ContinuousClock.now + .seconds(15)
                let json = #"{"items": [{"channel": "tls", "formats": {"http-stream": {"content": "item\n"}}}]}"#
                var body: [UInt8] = []
                // Publish until the hold has subscribed (a publish before that reaches nobody).
                while ContinuousClock.now < deadline {
                    let publisher = try await RawHTTPConnection.connect(port: p8.publishPort)
                    try await publisher.send(
                        "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                            + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
                    )
                    _ = try await publisher.readResponse()
                    await publisher.close()
                    if let chunks = try? await client.readChunks(until: "item\n", timeout: .milliseconds(300)) {
                        body += chunks.body
                        break
                    }
                }
                #expect(String(decoding: body, as: UTF8.self).hasSuffix("item\n"))
            }
        }
    }

    @Test func aWebSocketOverTLS() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(
                routes: ["* 127.0.0.1:\(backend.port)"],
                config: Self.config,
                prepare: { _ = try TestCertificate.make(name: "default_0", in: $0) }
            ) { p8 in
                let port = try #require(p8.httpsPorts.first)
                let socket = try await RawWebSocket.connect(
                    port: port,
                    path: "/wsecho",
                    tls: (TestCertificate.client, nil)
                )
                #expect(socket.response.status == 101)
                try await socket.send(text: "over tls")
                let frame = try await socket.readMessage(timeout: .seconds(15))
                #expect(String(decoding: frame.payload, as: UTF8.self) == "echo:over tls")
                await socket.close()
            }
        }
    }
}

/// The `p8` process with TLS ports: SIGHUP re-reads the certificates; a port without one stops start-up.
@Suite("p8 with https_ports", .timeLimit(.minutes(1)))
struct TLSProcessTests {
    @Test("SIGHUP re-reads the certificates: new handshakes get the new one")
    func sighupReloadsCertificates() async throws {
        try await withTestBackend { backend in
            let directory = try Self.configDirectory(backendPort: backend.port)
            defer { try? FileManager.default.removeItem(at: directory) }
            let first = try TestCertificate.make(name: "default_0", in: directory)
            let p8 = try P8Process.start(arguments: ["--config", directory.appendingPathComponent("p-8.conf").path])
            let port = try #require(try await p8.readyPorts().https)
            #expect(try await Self.certificate(port: port) == first)

            let second = try TestCertificate.make(name: "default_0", in: directory)
            #expect(second != first)
            p8.signal(SIGHUP)
            #expect(try await eventually(timeout: .seconds(15)) { p8.stderrText.contains("TLS certificates reloaded") })
            #expect(try await Self.certificate(port: port) == second)
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("an https port without a certificate is one clear line and a non-zero exit")
    func missingCertificateStopsStartUp() async throws {
        let directory = try Self.configDirectory(backendPort: 1)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certs = directory.appendingPathComponent("runner/certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        try "not a certificate".write(
            to: certs.appendingPathComponent("default_0.crt"),
            atomically: true,
            encoding: .utf8
        )
        let p8 = try P8Process.start(arguments: ["--config", directory.appendingPathComponent("p-8.conf").path])
        #expect(try await p8.waitForExit() != 0)
        #expect(p8.stderrText.contains("TLS certificate default_0 not usable"))
        #expect(p8.stderrText.contains("no TLS certificate for https port 0"))
    }

    private static func configDirectory(backendPort: Int) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("p8-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let text =
            "[global]\nrundir=run\n[runner]\nhttp_port=127.0.0.1:0\nhttps_ports=127.0.0.1:0\n"
            + "[handler]\npush_in_http_port=0\npush_in_spec=\npush_in_sub_specs=\ncommand_spec=\n"
        try text.write(to: directory.appendingPathComponent("p-8.conf"), atomically: true, encoding: .utf8)
        try "* 127.0.0.1:\(backendPort)\n".write(
            to: directory.appendingPathComponent("routes"),
            atomically: true,
            encoding: .utf8
        )
        return directory
    }

    private static func certificate(port: Int) async throws -> NIOSSLCertificate? {
        let client = try await RawHTTPConnection.connect(port: port, tls: (TestCertificate.client, nil))
        try await client.send("GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
        _ = try await client.readResponse()
        let certificate = try await client.peerCertificate()
        await client.close()
        return certificate
    }
}

/// Test certificates, made with the `openssl` command for each test (no private key is committed).
enum TestCertificate {
    /// A client context that accepts any server certificate (the tests compare it themselves).
    static let client: NIOSSLContext = {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try! NIOSSLContext(configuration: configuration)
    }()

    /// Writes `<name>.crt` and `<name>.key` (P-256, self-signed, for the name with `_` read as `*`) into
    /// `runner/certs` of `directory`, and returns the certificate.
    @discardableResult
    static func make(name: String, in directory: URL) throws -> NIOSSLCertificate {
        let certs = directory.appendingPathComponent("runner/certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        let host = name.hasPrefix("_.") ? "*" + name.dropFirst() : name
        let base = certs.appendingPathComponent(name).path
        // ChildProcess (posix_spawn), not Foundation.Process: this test process runs hundreds of servers, and
        // Foundation.Process once hung here waiting for an exited child.
        let openssl = try ChildProcess.spawn(
            URL(fileURLWithPath: "/usr/bin/env"),
            arguments: [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", base + ".key", "-out", base + ".crt", "-days", "2", "-subj", "/CN=\(host)",
                "-addext", "subjectAltName=DNS:\(host)",
            ]
        )
        // Called from the synchronous `prepare` of a test server: a bounded wait of the few milliseconds openssl
        // takes.
        let deadline = ContinuousClock.now + defaultWait
        while openssl.isRunning && ContinuousClock.now < deadline {
            usleep(2000)
        }
        guard !openssl.isRunning, openssl.terminationStatus == 0 else {
            openssl.signal(SIGKILL)
            throw TestCertificateError(description: "openssl failed for \(name)")
        }
        return try #require(try NIOSSLCertificate.fromPEMFile(base + ".crt").first)
    }
}

struct TestCertificateError: Error, CustomStringConvertible {
    var description: String
}
