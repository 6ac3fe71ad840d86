import GRIP
import Testing

@Suite struct RouteTableTests {
    static func single(_ line: String) throws -> Route {
        let parsed = RouteTable.parse(line)
        #expect(parsed.warnings.isEmpty)
        return try #require(parsed.table.routes.first)
    }

    static func warning(_ line: String) -> String? {
        let parsed = RouteTable.parse(line)
        #expect(parsed.table.routes.isEmpty)
        return parsed.warnings.first
    }

    // MARK: - Tokenizer

    @Test func simpleLine() throws {
        let route = try Self.single("* localhost:80")
        #expect(route.domain == .any)
        #expect(route.targets == [RouteTarget(kind: .host(host: "localhost", port: 80))])
        #expect(route.id == "*,*,*,*")
        #expect(!route.hasExplicitID)
        #expect(route.line == 1)
    }

    @Test func blankAndCommentLinesAndTrailingComments() throws {
        let parsed = RouteTable.parse(
            """

            # a comment
               # an indented comment
            *,path_beg=/a/ 127.0.0.1:1 # trailing comment
            """
        )
        #expect(parsed.warnings.isEmpty)
        #expect(parsed.table.routes.count == 1)
        #expect(parsed.table.routes[0].line == 4)
        #expect(parsed.table.routes[0].targets.count == 1)
    }

    @Test func multipleSpacesBetweenSections() throws {
        let route = try Self.single("  *,path_beg=/x/    127.0.0.1:1     127.0.0.1:2  ")
        #expect(route.targets.count == 2)
    }

    @Test func quotesAndEscapes() throws {
        let route = try Self.single(#"*,path_beg="/a b/",header="X-Q:say \"hi\" \\o/",prefix=pre"fix, x" 127.0.0.1:1"#)
        #expect(route.pathBeg == "/a b/")
        #expect(route.headers == [Route.Header(name: "X-Q", value: #"say "hi" \o/"#)])
        #expect(route.prefix == "prefix, x")
    }

    @Test(
        arguments: [
            (#"*,path_beg="/a 127.0.0.1:1"#, "unterminated quote"),
            (#"*,path_beg="/a\n" 127.0.0.1:1"#, "invalid escape"),
            ("*,=x 127.0.0.1:1", "empty prop name"),
            ("=x 127.0.0.1:1", "empty prop name"),
            ("*,,debug 127.0.0.1:1", "expecting prop"),
            ("*, 127.0.0.1:1", "expecting prop"),
            ("*", "must specify condition and at least one target"),
            ("*,proto=ftp 127.0.0.1:1", "proto must be set to 'http' or 'ws'"),
            ("*,ssl=maybe 127.0.0.1:1", "ssl must be set to 'yes' or 'no'"),
            ("*,path_beg= 127.0.0.1:1", "path_beg cannot be empty"),
            ("*,header=NoColon 127.0.0.1:1", "header must use format 'name:value'"),
            ("*,header=:v 127.0.0.1:1", "header must use format 'name:value'"),
            ("*,path_rem=x 127.0.0.1:1", "path_rem must be a number >= 0"),
            ("*,sig_iss=a,sig_key=file:k.pem 127.0.0.1:1", "not supported"),
            ("* localhost", "target bad format"),
            ("* :80", "target bad format"),
            ("* localhost:0", "target invalid port"),
            ("* localhost:65536", "target invalid port"),
            ("* localhost:http", "target invalid port"),
            ("* zhttp/tcp://127.0.0.1:5000", "zhttp/zhttpreq targets are not supported"),
            ("path_beg=/x/ 127.0.0.1:1", "condition has no domain or id"),
        ]
    )
    func invalidLinesAreSkippedWithAReason(line: String, reason: String) {
        let warning = Self.warning(line)
        #expect(warning?.hasPrefix("routes line 1: ") == true)
        #expect(warning?.contains(reason) == true, "\(warning ?? "no warning")")
    }

    @Test func invalidLinesDoNotStopTheFile() {
        let parsed = RouteTable.parse(
            "* localhost:0\notherhost.example 127.0.0.1:2\n*,ssl=x 127.0.0.1:1\n* 127.0.0.1:3"
        )
        #expect(parsed.table.routes.count == 2)
        #expect(
            parsed.warnings == [
                "routes line 1: target invalid port", "routes line 3: ssl must be set to 'yes' or 'no'",
            ]
        )
    }

    @Test func firstTokenWithEqualsIsAPropWithEmptyValue() throws {
        let route = try Self.single("path_beg=/x/,id=hidden 127.0.0.1:1")
        #expect(route.domain == .none)
        #expect(route.pathBeg == "/x/")
        #expect(route.id == "hidden")
        let parsed = RouteTable.parse("path_beg=/x/,id=hidden 127.0.0.1:1\n* 127.0.0.1:2")
        #expect(parsed.table.route(host: "any", path: "/x/y", isTLS: false, isWebSocket: false)?.id == "*,*,*,*")
        #expect(parsed.table.route(id: "hidden")?.pathBeg == "/x/")
    }

    @Test func flagsRepeatedPropsAndLastValueWins() throws {
        let route = try Self.single(
            "*,debug,aco,no_grip,resume_last_event_id,header=A:1,header=\"B: 2\",header=C:,prefix=a,prefix=b "
                + "127.0.0.1:1,sub=one,sub=,sub=two,host=h1,host=h2"
        )
        #expect(route.debug)
        #expect(route.autoCrossOrigin)
        #expect(route.noGrip)
        #expect(route.resumeLastEventID)
        #expect(
            route.headers == [
                Route.Header(name: "A", value: "1"), Route.Header(name: "B", value: "2"),
                Route.Header(name: "C", value: ""),
            ]
        )
        #expect(route.prefix == "b")
        #expect(route.targets[0].subscriptions == ["one", "two"])
        #expect(route.targets[0].hostHeader == "h2")
    }

    @Test func defaultsOfRouteOptions() throws {
        let route = try Self.single("example.com 127.0.0.1:1")
        #expect(route.domain == .host("example.com"))
        #expect(route.pathBeg == nil)
        #expect(route.proto == nil)
        #expect(route.ssl == nil)
        #expect(route.sigIss == nil)
        #expect(route.sigKey == nil)
        #expect(route.signature == nil)
        #expect(route.prefix == "")
        #expect(route.asHost == nil)
        #expect(route.pathRemove == 0)
        #expect(route.replaceBeg == nil)
        #expect(route.headers.isEmpty)
        #expect(!route.noGrip && !route.debug && !route.autoCrossOrigin && !route.resumeLastEventID)
        #expect(route.id == "example.com,*,*,*")
    }

    @Test func unknownPropsAreAcceptedAndListedOncePerLine() throws {
        let parsed = RouteTable.parse("*,foo,session,foo=2,sockjs=/s 127.0.0.1:1,bar,ipc_file_mode=777")
        #expect(parsed.table.routes.count == 1)
        #expect(
            parsed.warnings == [
                "routes line 1: ignoring unknown or unsupported options: foo, session, sockjs, "
                    + "target 1 bar, target 1 ipc_file_mode"
            ]
        )
    }

    @Test func duplicateConditionsAreSkipped() {
        let parsed = RouteTable.parse(
            "*,path_beg=/a/ 127.0.0.1:1\n*,path_beg=/a/ 127.0.0.1:2\n*,path_beg=/a/,ssl=yes 127.0.0.1:3"
        )
        #expect(parsed.table.routes.count == 2)
        #expect(parsed.warnings == ["routes line 2: skipping duplicate condition"])
        #expect(parsed.table.route(host: "h", path: "/a/", isTLS: false, isWebSocket: false)?.line == 1)
    }

    // MARK: - Options

    @Test func routeOptions() throws {
        let route = try Self.single(
            "*,id=r1,proto=ws,ssl=no,path_beg=/p/,sig_iss=myiss,sig_key=base64:c2VjcmV0,prefix=pre-,as_host=b.example:81 "
                + "127.0.0.1:1"
        )
        #expect(route.id == "r1")
        #expect(route.hasExplicitID)
        #expect(route.proto == .ws)
        #expect(route.ssl == false)
        #expect(route.sigIss == "myiss")
        #expect(route.sigKey == SigningKey(bytes: Array("secret".utf8)))
        #expect(route.signature?.issuer == "myiss")
        #expect(route.prefix == "pre-")
        #expect(route.asHost == "b.example:81")
    }

    @Test func signatureNeedsBothIssuerAndKey() throws {
        #expect(try Self.single("*,sig_iss=a 127.0.0.1:1").signature == nil)
        #expect(try Self.single("*,sig_key=k 127.0.0.1:1").signature == nil)
    }

    @Test func pathRewriting() throws {
        let replaced = try Self.single("*,path_beg=/rb/,replace_beg=/rewritten/ 127.0.0.1:1")
        #expect(replaced.pathRemove == 4)
        #expect(replaced.rewrittenPath("/rb/abc") == "/rewritten/abc")
        let removed = try Self.single("*,path_beg=/api/,path_rem=4 127.0.0.1:1")
        #expect(removed.pathRemove == 4)
        #expect(removed.rewrittenPath("/api/x?y=1") == "/x?y=1")
        #expect(removed.rewrittenPath("/a") == "")
        #expect(try Self.single("* 127.0.0.1:1").rewrittenPath("/same") == "/same")
    }

    @Test func targetOptions() throws {
        let route = try Self.single(
            "* 127.0.0.1:1,ssl,insecure,trust_connect_host,host=backend.example:1234,over_http,one_event,untrusted,sub=s "
                + "test [::1]:8080"
        )
        #expect(
            route.targets == [
                RouteTarget(
                    kind: .host(host: "127.0.0.1", port: 1),
                    ssl: true,
                    insecure: true,
                    trustConnectHost: true,
                    hostHeader: "backend.example:1234",
                    overHTTP: true,
                    oneEvent: true,
                    untrusted: true,
                    subscriptions: ["s"]
                ),
                RouteTarget(kind: .test),
                RouteTarget(kind: .host(host: "::1", port: 8080)),
            ]
        )
    }

    // MARK: - Matching

    @Test func hostBucketHasNoFallbackToWildcard() throws {
        let table = RouteTable.parse("dom.example,path_beg=/only/ 127.0.0.1:1\n* 127.0.0.1:2").table
        #expect(table.route(host: "dom.example", path: "/only/x", isTLS: false, isWebSocket: false)?.line == 1)
        #expect(table.route(host: "dom.example", path: "/other", isTLS: false, isWebSocket: false) == nil)
        #expect(table.route(host: "DOM.example:8080", path: "/only/", isTLS: false, isWebSocket: false)?.line == 1)
        #expect(table.route(host: "else.example", path: "/only/x", isTLS: false, isWebSocket: false)?.line == 2)
    }

    @Test func noWildcardMeansNoRoute() {
        let table = RouteTable.parse("a.example 127.0.0.1:1").table
        #expect(table.route(host: "b.example", path: "/", isTLS: false, isWebSocket: false) == nil)
    }

    @Test func longestPathBegWinsRegardlessOfOrder() {
        let table = RouteTable.parse("*,path_beg=/a/ 127.0.0.1:1\n*,path_beg=/a/b/ 127.0.0.1:2\n* 127.0.0.1:3").table
        #expect(table.route(host: "h", path: "/a/b/c", isTLS: false, isWebSocket: false)?.line == 2)
        #expect(table.route(host: "h", path: "/a/c", isTLS: false, isWebSocket: false)?.line == 1)
        #expect(table.route(host: "h", path: "/z", isTLS: false, isWebSocket: false)?.line == 3)
        let reversed = RouteTable.parse("* 127.0.0.1:3\n*,path_beg=/a/b/ 127.0.0.1:2\n*,path_beg=/a/ 127.0.0.1:1").table
        #expect(reversed.route(host: "h", path: "/a/b/c", isTLS: false, isWebSocket: false)?.line == 2)
    }

    @Test func protoBeatsLongerPath() {
        let table = RouteTable.parse("*,path_beg=/long/path/ 127.0.0.1:1\n*,proto=ws 127.0.0.1:2").table
        #expect(table.route(host: "h", path: "/long/path/x", isTLS: false, isWebSocket: true)?.line == 2)
        #expect(table.route(host: "h", path: "/long/path/x", isTLS: false, isWebSocket: false)?.line == 1)
        let http = RouteTable.parse("*,proto=http 127.0.0.1:1").table
        #expect(http.route(host: "h", path: "/", isTLS: false, isWebSocket: true) == nil)
    }

    @Test func sslConditionAndTieBreak() {
        let table = RouteTable.parse(
            "*,path_beg=/s/ 127.0.0.1:1\n*,path_beg=/s/,ssl=yes 127.0.0.1:2\n*,ssl=no 127.0.0.1:3"
        )
        .table
        #expect(table.route(host: "h", path: "/s/x", isTLS: true, isWebSocket: false)?.line == 2)
        #expect(table.route(host: "h", path: "/s/x", isTLS: false, isWebSocket: false)?.line == 1)
        #expect(table.route(host: "h", path: "/x", isTLS: false, isWebSocket: false)?.line == 3)
        #expect(table.route(host: "h", path: "/x", isTLS: true, isWebSocket: false) == nil)
    }

    @Test func idLookup() {
        let table = RouteTable.parse(
            "*,id=one,path_beg=/1/ 127.0.0.1:1\n*,id=dup,path_beg=/2/ 127.0.0.1:2\n*,id=dup,path_beg=/3/ 127.0.0.1:3\n"
                + "*,path_beg=/4/,proto=http,ssl=yes 127.0.0.1:4"
        )
        #expect(table.table.route(id: "one")?.line == 1)
        #expect(table.table.route(id: "dup") == nil)
        #expect(table.table.route(id: "*,http,yes,/4/")?.line == 4)
        #expect(table.table.route(id: "nope") == nil)
        #expect(table.warnings == [#"routes line 3: id "dup" is also used on line 2; lookups by this id are disabled"#])
    }

    @Test func specExampleFile() throws {
        let parsed = RouteTable.parse(try TestSupport.fixture("spec-example.routes"))
        #expect(parsed.warnings.isEmpty)
        #expect(parsed.table.routes.count == 10)
        let table = parsed.table
        func route(_ path: String, host: String = "localhost") -> Route? {
            table.route(host: host, path: path, isTLS: false, isWebSocket: false)
        }
        #expect(route("/test/x")?.targets == [RouteTarget(kind: .test)])
        #expect(route("/woh/")?.targets.first?.overHTTP == true)
        #expect(route("/nogrip/")?.noGrip == true)
        #expect(route("/rb/abc").map { $0.rewrittenPath("/rb/abc") } == "/rewritten/abc")
        #expect(route("/hdr/")?.headers == [Route.Header(name: "X-Route-Added", value: "yes")])
        #expect(route("/hdr/")?.targets.first?.hostHeader == "backend.example:1234")
        #expect(route("/sig/")?.signature?.issuer == "myiss")
        #expect(route("/sig/")?.signature?.key == SigningKey(bytes: Array("secret".utf8)))
        #expect(route("/multi/")?.targets.count == 2)
        #expect(route("/byid/")?.id == "myroute")
        #expect(table.route(id: "myroute")?.pathBeg == "/byid/")
        #expect(
            route("/", host: "otherhost.example:38010")?.targets == [
                RouteTarget(kind: .host(host: "127.0.0.1", port: 38059))
            ]
        )
        #expect(route("/other")?.targets == [RouteTarget(kind: .host(host: "127.0.0.1", port: 38050))])
    }

    @Test func hostWithoutPortForms() {
        let table = RouteTable.parse("::1 127.0.0.1:1\n* 127.0.0.1:2").table
        #expect(table.route(host: "[::1]:8080", path: "/", isTLS: false, isWebSocket: false)?.line == 1)
        #expect(table.route(host: "[::1]", path: "/", isTLS: false, isWebSocket: false)?.line == 1)
    }
}
