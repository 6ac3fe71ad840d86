import Foundation
import GRIP
import Testing

@Suite struct P8ConfigurationTests {
    @Test func defaultsOfAnEmptyFile() throws {
        let config = try TestSupport.parse("")
        #expect(config.warnings.isEmpty)
        #expect(config.configFile == "/etc/p8/p-8.conf")

        #expect(config.global == GlobalConfiguration(rundir: "/etc/p8/run", libdir: "/etc/p8"))
        #expect(config.global.ipcPrefix == "pushpin-")
        #expect(config.global.portOffset == 0)

        #expect(config.runner.httpListeners == [ListenAddress(host: "0.0.0.0", port: 7999)])
        #expect(config.runner.logdir == "/etc/p8/log")
        #expect(config.runner.logLevel == 2)
        #expect(config.runner.clientBufferSize == 8192)
        #expect(config.runner.clientMaxConn == 50_000)
        #expect(config.runner.services == [])

        let proxy = config.proxy
        #expect(proxy.routesFile == "/etc/p8/routes")
        #expect(!proxy.debug)
        #expect(!proxy.autoCrossOrigin)
        #expect(!proxy.acceptXForwardedProtocol)
        #expect(proxy.setXForwardedProtocol == .protoOnly)
        #expect(proxy.xForwardedFor.isEmpty)
        #expect(proxy.xForwardedForTrusted.isEmpty)
        #expect(!proxy.acceptPushpinRoute)
        #expect(proxy.sigIss == "pushpin")
        #expect(proxy.sigKey == nil)
        #expect(proxy.upstreamKey == nil)
        #expect(proxy.maxOpenRequests == nil)
        #expect(proxy.backendConnectTimeout == 10)
        #expect(proxy.backendResponseTimeout == 60)
        #expect(proxy.webSocketMaxFrameBytes == 1 << 20)
        #expect(proxy.webSocketMaxMessageBytes == 1 << 20)

        let handler = config.handler
        #expect(handler.pushInSpec == "tcp://127.0.0.1:5560")
        #expect(handler.pushInSubSpecs == ["tcp://127.0.0.1:5562"])
        #expect(!handler.pushInSubConnect)
        #expect(handler.pushInHTTPAddr == "127.0.0.1")
        #expect(handler.pushInHTTPPort == 5561)
        #expect(handler.statsSpec == "ipc:///etc/p8/run/pushpin-stats")
        #expect(handler.commandSpec == "tcp://127.0.0.1:5563")
        #expect(handler.messageRate == nil)
        #expect(handler.messageHWM == nil)
        #expect(handler.messageWait == 5000)
        #expect(handler.idCacheTTL == 60)
        #expect(handler.subscriptionLinger == 60)
        #expect(handler.connectionSubscriptionMax == 20)
        #expect(handler.statsFormat == .tnetstring)
        #expect(handler.statsReportInterval == 10)
        #expect(handler.prometheusPort == nil)
        #expect(handler.pushInHTTPMaxBodySize == 1_000_000)
        #expect(handler.publishKey == nil)

        #expect(config.store == StoreConfiguration(databaseFile: "/etc/p8/run/p8.sqlite"))
    }

    @Test func everyKeyParsed() throws {
        let config = try TestSupport.parse(
            """
            [global]
            rundir=/var/run/p8
            libdir=/usr/lib/p8
            ipc_prefix=p8-
            [runner]
            http_port=127.0.0.1:8000, 8001,[::1]:8002,8001
            logdir=logs
            log_level=3,pushpin-proxy:1
            client_buffer_size=100
            client_maxconn=200
            services=condure,pushpin-proxy
            [proxy]
            routesfile=/srv/routes
            debug=true
            auto_cross_origin=yes
            accept_x_forwarded_protocol=1
            set_x_forwarded_protocol=true
            x_forwarded_for=truncate:0,append
            x_forwarded_for_trusted=append
            accept_pushpin_route=true
            sig_iss=me
            sig_key=base64:c2VjcmV0
            upstream_key=up
            max_open_requests=5
            backend_connect_timeout=3
            backend_response_timeout=30
            websocket_max_frame_size=4096
            websocket_max_message_size=65536
            [handler]
            push_in_spec=tcp://*:6000
            push_in_sub_specs=tcp://127.0.0.1:6001,ipc://{rundir}/{ipc_prefix}sub
            push_in_sub_connect=true
            push_in_http_addr=0.0.0.0
            push_in_http_port=6002
            stats_spec=ipc://{rundir}/stats
            command_spec=tcp://127.0.0.1:6003
            message_rate=2500
            message_hwm=25000
            message_wait=1000
            id_cache_ttl=0
            subscription_linger=30
            connection_subscription_max=50
            stats_format=json
            stats_report_interval=5
            prometheus_port=9090
            push_in_http_max_body_size=2000
            push_in_http_key=pub
            [store]
            database_file=data/p8.sqlite
            synchronous=full
            max_items=10
            max_age=3600
            max_bytes=5000
            max_total_bytes=100000
            retention_overrides=chat-:items=5, logs:age=60:bytes=70, all:items=1:age=2:bytes=3
            """
        )
        #expect(config.warnings == [])
        #expect(config.global == GlobalConfiguration(rundir: "/var/run/p8", libdir: "/usr/lib/p8", ipcPrefix: "p8-"))
        #expect(config.runner.tls == TLSListenConfiguration(certsDirectory: "/etc/p8/runner/certs"))
        var runner = config.runner
        runner.tls = TLSListenConfiguration(certsDirectory: "runner/certs")
        #expect(
            runner
                == RunnerConfiguration(
                    httpListeners: [
                        ListenAddress(host: "127.0.0.1", port: 8000),
                        ListenAddress(host: "0.0.0.0", port: 8001),
                        ListenAddress(host: "::1", port: 8002),
                    ],
                    logdir: "/etc/p8/logs",
                    logLevel: 3,
                    clientBufferSize: 100,
                    clientMaxConn: 200,
                    services: ["condure", "pushpin-proxy"]
                )
        )
        #expect(
            config.proxy
                == ProxyConfiguration(
                    routesFile: "/srv/routes",
                    debug: true,
                    autoCrossOrigin: true,
                    acceptXForwardedProtocol: true,
                    setXForwardedProtocol: .protoAndProtocol,
                    xForwardedFor: XForwardedForRule(truncate: 0, append: true),
                    xForwardedForTrusted: XForwardedForRule(append: true),
                    acceptPushpinRoute: true,
                    sigIss: "me",
                    sigKey: SigningKey(bytes: Array("secret".utf8)),
                    upstreamKey: SigningKey(bytes: Array("up".utf8)),
                    maxOpenRequests: 5,
                    backendConnectTimeout: 3,
                    backendResponseTimeout: 30,
                    webSocketMaxFrameBytes: 4096,
                    webSocketMaxMessageBytes: 65536
                )
        )
        #expect(
            config.handler
                == HandlerConfiguration(
                    pushInSpec: "tcp://*:6000",
                    pushInSubSpecs: ["tcp://127.0.0.1:6001", "ipc:///var/run/p8/p8-sub"],
                    pushInSubConnect: true,
                    pushInHTTPAddr: "0.0.0.0",
                    pushInHTTPPort: 6002,
                    statsSpec: "ipc:///var/run/p8/stats",
                    commandSpec: "tcp://127.0.0.1:6003",
                    messageRate: 2500,
                    messageHWM: 25000,
                    messageWait: 1000,
                    idCacheTTL: 0,
                    subscriptionLinger: 30,
                    connectionSubscriptionMax: 50,
                    statsFormat: .json,
                    statsReportInterval: 5,
                    prometheusPort: 9090,
                    pushInHTTPMaxBodySize: 2000,
                    publishKey: SigningKey(bytes: Array("pub".utf8))
                )
        )
        let retention = RetentionPolicy(maxItems: 10, maxAgeSeconds: 3600, maxBytes: 5000)
        #expect(
            config.store
                == StoreConfiguration(
                    databaseFile: "/etc/p8/data/p8.sqlite",
                    synchronous: .full,
                    defaultRetention: retention,
                    retentionOverrides: [
                        .init(
                            channelPrefix: "chat-",
                            policy: RetentionPolicy(maxItems: 5, maxAgeSeconds: 3600, maxBytes: 5000)
                        ),
                        .init(
                            channelPrefix: "logs",
                            policy: RetentionPolicy(maxItems: 10, maxAgeSeconds: 60, maxBytes: 70)
                        ),
                        .init(
                            channelPrefix: "all",
                            policy: RetentionPolicy(maxItems: 1, maxAgeSeconds: 2, maxBytes: 3)
                        ),
                    ],
                    maxTotalBytes: 100_000,
                    reorderingWaitMilliseconds: 1000
                )
        )
    }

    @Test(
        arguments: [
            ("proto-only", XForwardedProtocolMode.protoOnly),
            ("true", .protoAndProtocol),
            ("false", .off),
            ("", .off),
            ("whatever", .off),
        ]
    )
    func setXForwardedProtocol(value: String, mode: XForwardedProtocolMode) throws {
        let config = try TestSupport.parse("[proxy]\nset_x_forwarded_protocol=\(value)")
        #expect(config.proxy.setXForwardedProtocol == mode)
    }

    @Test func portOffsetAppliesToTCPSpecsAndPublishPortOnly() throws {
        let config = try TestSupport.parse(
            """
            [global]
            port_offset=32440
            [runner]
            http_port=127.0.0.1:38010
            [handler]
            stats_spec=ipc://{rundir}/stats
            prometheus_port=9000
            """
        )
        #expect(config.global.portOffset == 32440)
        #expect(config.runner.httpListeners == [ListenAddress(host: "127.0.0.1", port: 38010)])
        #expect(config.handler.pushInSpec == "tcp://127.0.0.1:38000")
        #expect(config.handler.pushInHTTPPort == 38001)
        #expect(config.handler.pushInSubSpecs == ["tcp://127.0.0.1:38002"])
        #expect(config.handler.commandSpec == "tcp://127.0.0.1:38003")
        #expect(config.handler.statsSpec == "ipc:///etc/p8/run/stats")
        #expect(config.handler.prometheusPort == 9000)
    }

    @Test func portOffsetOverflowIsAnError() {
        #expect(throws: ConfigError.self) {
            try TestSupport.parse("[global]\nport_offset=65000\n[handler]\npush_in_http_port=5561")
        }
    }

    @Test func templatesAndRelativePaths() throws {
        let config = try TestSupport.parse(
            """
            [global]
            libdir=lib
            rundir={libdir}/../var/run
            ipc_prefix=x-
            [runner]
            logdir={rundir}/log
            [proxy]
            routesfile=../routes/main
            sig_iss={ipc_prefix}issuer
            [handler]
            command_spec=ipc://{rundir}/{ipc_prefix}command
            [store]
            database_file={rundir}/db/p8.sqlite
            """
        )
        #expect(config.global.libdir == "/etc/p8/lib")
        #expect(config.global.rundir == "/etc/p8/var/run")
        #expect(config.runner.logdir == "/etc/p8/var/run/log")
        #expect(config.proxy.routesFile == "/etc/routes/main")
        #expect(config.proxy.sigIss == "x-issuer")
        #expect(config.handler.commandSpec == "ipc:///etc/p8/var/run/x-command")
        #expect(config.handler.statsSpec == "ipc:///etc/p8/var/run/x-stats")
        #expect(config.store.databaseFile == "/etc/p8/var/run/db/p8.sqlite")
    }

    @Test func deprecatedRunnerRundirIsAFallback() throws {
        #expect(try TestSupport.parse("[runner]\nrundir=/r").global.rundir == "/r")
        #expect(try TestSupport.parse("[global]\nrundir=/g\n[runner]\nrundir=/r").global.rundir == "/g")
    }

    @Test func includeIsReadAndTheMainFileWins() throws {
        let config = try TestSupport.parse(
            """
            [global]
            include=extra/internal.conf
            [proxy]
            sig_iss=main
            """,
            files: [
                "/etc/p8/extra/internal.conf": """
                [proxy]
                sig_iss=included
                debug=true
                [handler]
                message_wait=42
                """
            ]
        )
        #expect(config.warnings.isEmpty)
        #expect(config.proxy.sigIss == "main")
        #expect(config.proxy.debug)
        #expect(config.handler.messageWait == 42)
    }

    @Test func missingLibdirIncludeIsWarnedAndSkipped() throws {
        let config = try TestSupport.parse("[global]\ninclude={libdir}/internal.conf\n[proxy]\ndebug=true")
        #expect(config.proxy.debug)
        #expect(
            config.warnings == [
                "include file /etc/p8/internal.conf (include={libdir}/internal.conf) not found; continuing without it"
            ]
        )
    }

    @Test func includeErrorsNameTheIncludedFile() {
        let error = #expect(throws: ConfigError.self) {
            try TestSupport.parse(
                "[global]\ninclude=/opt/inc.conf",
                files: ["/opt/inc.conf": "[proxy]\n\ndebug=maybe"]
            )
        }
        #expect(error?.file == "/opt/inc.conf")
        #expect(error?.line == 3)
    }

    @Test func unknownAndUnsupportedKeysAreWarnedOnce() throws {
        let config = try TestSupport.parse(
            """
            [runner]
            services=condure,zurl,pushpin-proxy,pushpin-handler
            local_ports=/tmp/p8.sock
            [proxy]
            foo=1
            updates_check=off
            zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
            sockjs_url=http://example.com/sockjs.js
            [x]
            bar=2
            [empty]
            [handler]
            share_all=true
            """
        )
        #expect(
            config.warnings == [
                "ignoring unknown config keys: [proxy] foo, [x] bar, [empty]",
                "config keys accepted but not supported (ignored): [runner] local_ports, "
                    + "[proxy] updates_check, [proxy] zurl_out_specs, [proxy] sockjs_url, [handler] share_all",
            ]
        )
        #expect(config.runner.services == ["condure", "zurl", "pushpin-proxy", "pushpin-handler"])
    }

    @Test func malformedLinesBecomeWarnings() throws {
        let config = try TestSupport.parse("[proxy]\nthis is not a key\ndebug=true")
        #expect(config.proxy.debug)
        #expect(config.warnings.count == 1)
        #expect(config.warnings[0].hasPrefix("/etc/p8/p-8.conf: line 2:"))
    }

    @Test(
        arguments: [
            ("[runner]\nhttp_port=abc", "runner", "http_port"),
            ("[runner]\nhttp_port=70000", "runner", "http_port"),
            ("[runner]\nhttp_port=", "runner", "http_port"),
            ("[runner]\nlog_level=loud", "runner", "log_level"),
            ("[runner]\nclient_maxconn=0", "runner", "client_maxconn"),
            ("[global]\nport_offset=-1", "global", "port_offset"),
            ("[proxy]\ndebug=maybe", "proxy", "debug"),
            ("[proxy]\nx_forwarded_for=prepend", "proxy", "x_forwarded_for"),
            ("[proxy]\nsig_key=base64:!!", "proxy", "sig_key"),
            ("[proxy]\nsig_key=file:key.pem", "proxy", "sig_key"),
            ("[proxy]\nmax_open_requests=0", "proxy", "max_open_requests"),
            ("[proxy]\nbackend_connect_timeout=0", "proxy", "backend_connect_timeout"),
            ("[handler]\npush_in_http_port=http", "handler", "push_in_http_port"),
            ("[handler]\nstats_format=xml", "handler", "stats_format"),
            ("[handler]\nprometheus_port=70000", "handler", "prometheus_port"),
            ("[handler]\nmessage_wait=-5", "handler", "message_wait"),
            ("[store]\nsynchronous=off", "store", "synchronous"),
            ("[store]\nmax_items=0", "store", "max_items"),
            ("[store]\nmax_age=-1", "store", "max_age"),
            ("[store]\nmax_bytes=x", "store", "max_bytes"),
            ("[store]\nmax_total_bytes=0", "store", "max_total_bytes"),
            ("[store]\nretention_overrides=:items=5", "store", "retention_overrides"),
            ("[store]\nretention_overrides=a:items=0", "store", "retention_overrides"),
            ("[store]\nretention_overrides=a:count=3", "store", "retention_overrides"),
            ("[store]\nretention_overrides=a:items", "store", "retention_overrides"),
        ]
    )
    func invalidValuesThrow(text: String, section: String, key: String) {
        let error = #expect(throws: ConfigError.self) {
            try TestSupport.parse(text)
        }
        #expect(error?.section == section)
        #expect(error?.key == key)
        #expect(error?.line == 2)
        #expect(error?.file == "/etc/p8/p-8.conf")
        #expect(error?.description.hasPrefix("/etc/p8/p-8.conf:2: [\(section)] \(key): ") == true)
    }

    @Test func configErrorDescription() {
        #expect(ConfigError(.invalidValue, "bad").description == "bad")
        #expect(ConfigError(.invalidValue, "bad", line: 3).description == "line 3: bad")
        #expect(
            ConfigError(.invalidValue, "bad", section: "proxy", key: "debug", line: 3, file: "/c").description
                == "/c:3: [proxy] debug: bad"
        )
    }

    @Test func limitsPushpinWritesAsNegativeMeanUnlimited() throws {
        let config = try TestSupport.parse("[proxy]\nmax_open_requests=-1\n[handler]\nmessage_rate=-1\nmessage_hwm=")
        #expect(config.proxy.maxOpenRequests == nil)
        #expect(config.handler.messageRate == nil)
        #expect(config.handler.messageHWM == nil)
    }

    @Test func emptyKeysAreNoKeys() throws {
        let config = try TestSupport.parse("[proxy]\nsig_key=\nupstream_key=\n[handler]\npush_in_http_key=")
        #expect(config.proxy.sigKey == nil)
        #expect(config.proxy.upstreamKey == nil)
        #expect(config.handler.publishKey == nil)
    }

    @Test func singularSubSpecAliasAndEmptySpecs() throws {
        let alias = try TestSupport.parse("[handler]\npush_in_sub_spec=tcp://127.0.0.1:7000")
        #expect(alias.handler.pushInSubSpecs == ["tcp://127.0.0.1:7000"])
        let disabled = try TestSupport.parse("[handler]\npush_in_sub_specs=\npush_in_spec=")
        #expect(disabled.handler.pushInSubSpecs == [])
        #expect(disabled.handler.pushInSpec == "")
    }

    @Test func logLevelWithOnlyServiceLevelsKeepsTheDefault() throws {
        #expect(try TestSupport.parse("[runner]\nlog_level=pushpin-proxy:3").runner.logLevel == 2)
        #expect(try TestSupport.parse("[runner]\nlog_level=0").runner.logLevel == 0)
    }

    @Test func conformanceSuitePushpinExtras() throws {
        // The keys the suite adds for a real Pushpin: all accepted, none acted on.
        let config = try TestSupport.parse(try TestSupport.fixture("pushpin-as-custom.ini"))
        #expect(
            config.warnings == [
                "include file /etc/p8/internal.conf (include={libdir}/internal.conf) not found; continuing without it",
                "config keys accepted but not supported (ignored): [proxy] zurl_out_specs, "
                    + "[proxy] zurl_out_stream_specs, [proxy] zurl_in_specs",
            ]
        )
        #expect(config.handler.pushInSubSpecs == ["tcp://127.0.0.1:28012"])
        #expect(config.handler.commandSpec == "tcp://127.0.0.1:28013")
    }
}
