import Foundation
import GRIP
import Runner
import Testing

/// Reading config files (Runner's `P8Configuration.load`): the parser's own tests are in P8ConfigurationTests.
@Suite struct ConfigFileTests {
    @Test func conformanceSuiteConfig() throws {
        let path = try TestSupport.fixturePath("conformance.conf")
        let config = try P8Configuration.load(configFile: path)
        #expect(config.warnings == ["config keys accepted but not supported (ignored): [proxy] updates_check"])
        #expect(config.configFile == path)
        #expect(config.global.rundir == "/tmp/p8-conformance/run")
        #expect(config.runner.httpListeners == [ListenAddress(host: "127.0.0.1", port: 28000)])
        #expect(config.runner.logdir == "/tmp/p8-conformance/log")
        #expect(config.proxy.routesFile.hasSuffix("/Fixtures/routes"))
        #expect(config.proxy.xForwardedFor == XForwardedForRule(append: true))
        #expect(config.proxy.xForwardedForTrusted.isEmpty)
        #expect(config.proxy.sigKey == SigningKey(bytes: Array("conformance-suite-signing-key-0123456789abcdef".utf8)))
        #expect(config.proxy.upstreamKey == nil)
        #expect(config.handler.pushInHTTPPort == 28011)
        #expect(config.handler.pushInSpec == "tcp://127.0.0.1:28010")
        #expect(config.handler.messageWait == 1000)
        #expect(config.store.databaseFile == "/tmp/p8-conformance/p8.sqlite")
    }

    @Test func exampleConfigLoads() throws {
        let config = try P8Configuration.load(configFile: TestSupport.projectRoot + "/config/p-8.conf.example")
        #expect(config.warnings.isEmpty)
        #expect(config.runner.httpListeners == [ListenAddress(host: "0.0.0.0", port: 7999)])
        #expect(config.global.rundir == TestSupport.projectRoot + "/run")
        #expect(config.runner.logdir == TestSupport.projectRoot + "/run/log")
        #expect(config.store.databaseFile == TestSupport.projectRoot + "/run/p8.sqlite")
        #expect(config.proxy.routesFile == TestSupport.projectRoot + "/config/routes.example")
        #expect(config.proxy.sigKey == SigningKey(bytes: Array("changeme".utf8)))
        #expect(config.handler.pushInHTTPPort == 5561)

        let routes = RouteTable.parse(
            try String(contentsOfFile: config.proxy.routesFile, encoding: .utf8)
        )
        #expect(routes.warnings.isEmpty)
        #expect(routes.table.routes.count == 1)
        let route = try #require(routes.table.route(host: "example.com", path: "/", isTLS: false, isWebSocket: false))
        #expect(route.targets == [RouteTarget(kind: .host(host: "localhost", port: 80))])
    }

    @Test func unreadableFileIsAnError() {
        let error = #expect(throws: ConfigError.self) {
            try P8Configuration.load(configFile: "/nonexistent/p-8.conf")
        }
        #expect(error?.code == .fileNotReadable)
    }
}
