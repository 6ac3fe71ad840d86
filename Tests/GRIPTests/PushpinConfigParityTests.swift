import GRIP
import Testing

/// Configuration that Pushpin 1.37-1.41 added and users write (issue 18).
@Suite struct PushpinConfigParityTests {
    @Test func fileKeysAreReadRelativeToTheConfigDirectory() throws {
        let config = try TestSupport.parse(
            "[proxy]\nsig_key=file:keys/sig\nupstream_key=file:/run/secrets/upstream\n[handler]\npush_in_http_key=file:pub",
            files: [
                "/etc/p8/keys/sig": "from-a-file\n",
                "/run/secrets/upstream": "up\r\n",
                "/etc/p8/pub": "base64:not-decoded",
            ]
        )
        #expect(config.proxy.sigKey == SigningKey(bytes: Array("from-a-file".utf8)))
        #expect(config.proxy.upstreamKey == SigningKey(bytes: Array("up".utf8)))
        // The file holds the secret itself: no second level of key syntax.
        #expect(config.handler.publishKey == SigningKey(bytes: Array("base64:not-decoded".utf8)))
        #expect(config.warnings.isEmpty)
        #expect(try TestSupport.parse("[proxy]\nsig_key=file:empty", files: ["/etc/p8/empty": ""]).proxy.sigKey == nil)
    }

    @Test func aMissingKeyFileOrAPEMKeyStopsStartUp() {
        let missing = #expect(throws: ConfigError.self) { try TestSupport.parse("[proxy]\nsig_key=file:nope") }
        #expect(missing?.key == "sig_key")
        #expect(missing?.description.contains("cannot read the key file /etc/p8/nope") == true)
        let pem = #expect(throws: ConfigError.self) {
            try TestSupport.parse(
                "[proxy]\nsig_key=file:key.pem",
                files: ["/etc/p8/key.pem": "-----BEGIN EC PRIVATE KEY-----\nMHc=\n-----END EC PRIVATE KEY-----\n"]
            )
        }
        #expect(pem?.code == .unsupported)
        #expect(pem?.line == 2)
    }

    @Test func updateOnFirstSubscriptionIsUnderstoodAndChecked() throws {
        #expect(try TestSupport.parse("[handler]\nupdate_on_first_subscription=false").warnings.isEmpty)
        let error = #expect(throws: ConfigError.self) {
            try TestSupport.parse("[handler]\nupdate_on_first_subscription=sometimes")
        }
        #expect(error?.key == "update_on_first_subscription")
    }

    @Test func theRouteOptionLogLevel() {
        let (table, warnings) = RouteTable.parse("*,log_level=3 127.0.0.1:80\na.example 127.0.0.1:81")
        #expect(warnings.isEmpty)
        #expect(table.route(host: "x", path: "/", isTLS: false, isWebSocket: false)?.logLevel == 3)
        #expect(table.route(host: "a.example", path: "/", isTLS: false, isWebSocket: false)?.logLevel == nil)
        let bad = RouteTable.parse("*,log_level=loud 127.0.0.1:80")
        #expect(bad.warnings == ["routes line 1: log_level must be a number >= 0"])
    }
}
