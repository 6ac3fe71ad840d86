import GRIP
import Testing

@Suite struct InstructHeaderTests {
    static func parse(
        _ headers: [(String, String)],
        status: Int = 200,
        reason: String = "OK",
        body: String = ""
    ) throws -> Instruct {
        try Instruct.parse(status: status, reason: reason, headers: headers, body: Array(body.utf8))
    }

    static func error(_ headers: [(String, String)], status: Int = 200, body: String = "") -> InstructError? {
        do {
            _ = try Instruct.parse(status: status, reason: "OK", headers: headers, body: Array(body.utf8))
            return nil
        } catch {
            return error
        }
    }

    // MARK: - Detection

    @Test(
        arguments: [
            ([("Grip-Hold", "response")], true),
            ([("grip-foo", "bar")], true),
            ([("GRIP-X", "")], true),
            ([("Content-Type", "application/grip-instruct")], true),
            ([("Content-Type", "Application/GRIP-Instruct; charset=utf-8")], true),
            ([("Content-Type", "application/json")], false),
            ([("X-Grip", "x")], false),
            ([], false),
        ] as [([(String, String)], Bool)]
    )
    func gripResponseDetection(headers: [(String, String)], expected: Bool) {
        #expect(Instruct.isGripResponse(headers) == expected)
    }

    // MARK: - No hold

    @Test func unknownGripHeaderOnlyIsADirectAnswer() throws {
        let instruct = try Self.parse(
            [("Content-Type", "text/plain"), ("Grip-Foo", "bar"), ("X-Custom", "abc")],
            body: "hello"
        )
        #expect(instruct.holdMode == .none)
        #expect(instruct.channels.isEmpty)
        #expect(instruct.nextLink == nil)
        #expect(
            instruct.response
                == Instruct.Response(
                    code: 200,
                    reason: "OK",
                    headers: [
                        HeaderField(name: "Content-Type", value: "text/plain"),
                        HeaderField(name: "X-Custom", value: "abc"),
                    ],
                    body: Array("hello".utf8)
                )
        )
    }

    @Test func responseHeadersLoseGripHopByHopLengthAndEncoding() throws {
        let instruct = try Self.parse([
            ("Grip-Hold", "response"), ("Grip-Channel", "c"), ("Connection", "close, X-Conn-Listed"),
            ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"), ("Content-Length", "12"),
            ("Content-Encoding", "identity"), ("Upgrade", "h2c"), ("TE", "trailers"), ("Trailer", "X"),
            ("Proxy-Connection", "x"), ("X-Conn-Listed", "1"), ("X-Keep", "yes"), ("x-keep", "twice"),
        ])
        #expect(
            instruct.response.headers == [
                HeaderField(name: "X-Keep", value: "yes"), HeaderField(name: "x-keep", value: "twice"),
            ]
        )
    }

    // MARK: - Grip-Hold

    @Test(arguments: [("response", Instruct.HoldMode.response), ("stream", .stream), (" stream ", .stream)])
    func gripHold(value: String, mode: Instruct.HoldMode) throws {
        #expect(try Self.parse([("Grip-Hold", value), ("Grip-Channel", "c")]).holdMode == mode)
    }

    @Test(arguments: ["bogus", "Response", "", "response, stream"])
    func gripHoldInvalid(value: String) {
        let error = Self.error([("Grip-Hold", value)])
        #expect(error?.code == .invalidHoldMode)
        #expect(error?.message == "Grip-Hold must be set to either 'response' or 'stream'")
    }

    // MARK: - Grip-Channel

    @Test func channelsRepeatedAndCommaSeparated() throws {
        let instruct = try Self.parse([
            ("Grip-Hold", "stream"), ("Grip-Channel", "a, b"), ("grip-channel", "c; filter=skip-self"),
        ])
        #expect(instruct.channels.map(\.name) == ["a", "b", "c"])
        #expect(instruct.channels[2].filters == ["skip-self"])
    }

    @Test func channelParameters() throws {
        let instruct = try Self.parse([
            ("Grip-Hold", "response"),
            ("Grip-Channel", #"ch1; prev-id=5; filter=skip-self; filter="var-subst"; unknown=x"#),
            ("Grip-Channel", #"ch2; Prev-ID="a;b,c""#),
        ])
        #expect(
            instruct.channels == [
                Instruct.Channel(name: "ch1", prevID: "5", filters: ["skip-self", "var-subst"]),
                Instruct.Channel(name: "ch2", prevID: "a;b,c"),
            ]
        )
    }

    @Test(arguments: ["", " , ", "; prev-id=1", #"c; prev-id="unterminated"#, #"c; prev-id="x\"#])
    func channelInvalid(value: String) {
        let error = Self.error([("Grip-Hold", "response"), ("Grip-Channel", value)])
        #expect(error?.code == .invalidChannel)
        #expect(error?.message == "failed to parse Grip-Channel")
    }

    // MARK: - Grip-Timeout

    @Test(
        arguments: [(nil, 55), ("30", 30), ("5", 5), ("3", 5), ("0", 5), (" 120 ", 120), ("+7", 7)] as [(String?, Int)]
    )
    func timeout(value: String?, expected: Int) throws {
        var headers = [("Grip-Hold", "response"), ("Grip-Channel", "c")]
        if let value {
            headers.append(("Grip-Timeout", value))
        }
        #expect(try Self.parse(headers).timeout == expected)
    }

    @Test(
        arguments: [
            ("abc", "failed to parse Grip-Timeout"), ("1.5", "failed to parse Grip-Timeout"),
            ("", "failed to parse Grip-Timeout"), ("-1", "Grip-Timeout has invalid value"),
        ]
    )
    func timeoutInvalid(value: String, message: String) {
        let error = Self.error([("Grip-Hold", "response"), ("Grip-Channel", "c"), ("Grip-Timeout", value)])
        #expect(error == InstructError(.invalidTimeout, message))
    }

    // MARK: - Grip-Keep-Alive

    @Test(
        arguments: [
            ("ka", Array("ka".utf8), 55, Instruct.KeepAlive.Mode.idle),
            ("ka-raw; format=raw", Array("ka-raw".utf8), 55, .idle),
            (#"ka\n; format=cstring; timeout=3"#, Array("ka\n".utf8), 3, .idle),
            (#":\n\n; format=cstring; timeout=20"#, Array(":\n\n".utf8), 20, .idle),
            ("S0EK; format=base64; timeout=2; mode=interval", Array("KA\n".utf8), 2, .interval),
            ("x; mode=idle; timeout=0", Array("x".utf8), 1, .idle),
            (#"\\\r\x41\x7e\t; format=cstring"#, [0x5C, 0x0D, 0x41, 0x7E], 55, .idle),
            ("a,b; timeout=9", Array("a,b".utf8), 9, .idle),
        ] as [(String, [UInt8], Int, Instruct.KeepAlive.Mode)]
    )
    func keepAlive(value: String, data: [UInt8], timeout: Int, mode: Instruct.KeepAlive.Mode) throws {
        let instruct = try Self.parse([("Grip-Hold", "stream"), ("Grip-Channel", "s"), ("Grip-Keep-Alive", value)])
        #expect(instruct.keepAlive == Instruct.KeepAlive(data: data, timeout: timeout, mode: mode))
    }

    @Test(
        arguments: [
            ("; format=raw", "Grip-Keep-Alive cannot be empty"),
            ("", "Grip-Keep-Alive cannot be empty"),
            ("x; format=hex", "no such Grip-Keep-Alive format 'hex'"),
            ("x; mode=sometimes", "no such Grip-Keep-Alive mode 'sometimes'"),
            (#"x\; format=cstring"#, "failed to parse Grip-Keep-Alive cstring format"),
            (#"\xZZ; format=cstring"#, "failed to parse Grip-Keep-Alive cstring format"),
            (#"\x4; format=cstring"#, "failed to parse Grip-Keep-Alive cstring format"),
            // Found by the instruct-headers fuzz target: an escape that decodes to nothing leaves no data.
            (#"\1; format=cstring"#, "Grip-Keep-Alive cannot be empty"),
            ("!!!; format=base64", "failed to parse Grip-Keep-Alive base64 format"),
            ("x; timeout=soon", "failed to parse Grip-Keep-Alive timeout value"),
            ("x; timeout=-1", "Grip-Keep-Alive timeout has invalid value"),
            (#"x; timeout="1"#, "failed to parse Grip-Keep-Alive"),
        ]
    )
    func keepAliveInvalid(value: String, message: String) {
        let error = Self.error([("Grip-Hold", "stream"), ("Grip-Channel", "s"), ("Grip-Keep-Alive", value)])
        #expect(error == InstructError(.invalidKeepAlive, message))
    }

    // MARK: - Grip-Link

    @Test func nextLinkWithTimeout() throws {
        let instruct = try Self.parse([
            ("Grip-Hold", "stream"), ("Grip-Channel", "c; prev-id=5"), ("Grip-Link", "</l2>; rel=next; timeout=20"),
        ])
        #expect(instruct.nextLink == Instruct.Link(uri: "/l2", timeout: 20))
    }

    @Test func nextLinkDefaultsAndOtherRels() throws {
        let instruct = try Self.parse([
            ("Grip-Link", "<http://example.com/next?a=1&b=%20>; rel=next, </bye>; rel=gone"),
            ("Grip-Link", "</prev>; rel=prev"), ("Grip-Link", "</no-params>"),
        ])
        #expect(instruct.holdMode == .none)
        #expect(instruct.nextLink == Instruct.Link(uri: "http://example.com/next?a=1&b=%20", timeout: 120))
        #expect(instruct.goneLink == "/bye")
        #expect(try Self.parse([("Grip-Link", "</n>; rel=next; timeout=0")]).nextLink?.timeout == 0)
    }

    @Test(
        arguments: [
            ("/l2; rel=next", "failed to parse Grip-Link value"),
            ("<>; rel=next", "failed to parse Grip-Link value"),
            ("<a; rel=next", "failed to parse Grip-Link value"),
            ("</a b>; rel=next", "Grip-Link contains invalid link"),
            ("</a%zz>; rel=next", "Grip-Link contains invalid link"),
            ("</a>; rel=next; timeout=x", "failed to parse Grip-Link timeout value"),
            ("</a>; rel=next; timeout=-5", "Grip-Link timeout has invalid value"),
        ]
    )
    func linkInvalid(value: String, message: String) {
        #expect(Self.error([("Grip-Link", value)]) == InstructError(.invalidLink, message))
    }

    // MARK: - Grip-Status

    @Test(
        arguments: [
            ("418 Teapot", 418, "Teapot"), ("299", 299, "Undefined Reason"), ("404", 404, "Not Found"),
            ("201 Made It Up", 201, "Made It Up"),
        ]
    )
    func gripStatus(value: String, code: Int, reason: String) throws {
        let instruct = try Self.parse([("Grip-Status", value)], status: 200, reason: "Backend OK")
        #expect(instruct.response.code == code)
        #expect(instruct.response.reason == reason)
        #expect(instruct.status?.code == code)
        #expect(instruct.response.headers.isEmpty)
    }

    @Test(arguments: ["abc", "1000", "-1", "42", "99 Low", "2OO OK"])
    func gripStatusInvalid(value: String) {
        #expect(
            Self.error([("Grip-Status", value)])
                == InstructError(.invalidStatus, "Grip-Status contains invalid status code")
        )
    }

    @Test func backendStatusAndReasonKeptWithoutGripStatus() throws {
        let instruct = try Self.parse([("Grip-Foo", "x")], status: 202, reason: "")
        #expect((instruct.response.code, instruct.response.reason) == (202, "Accepted"))
        let custom = try Self.parse([("Grip-Foo", "x")], status: 202, reason: "Queued")
        #expect(custom.response.reason == "Queued")
    }

    // MARK: - Grip-Set-Meta

    @Test func setMeta() throws {
        let instruct = try Self.parse([
            ("Grip-Hold", "stream"), ("Grip-Channel", "mc3; filter=skip-self"), ("Grip-Set-Meta", "user=alice"),
            ("Grip-Set-Meta", #"name="Bob Smith", id_format="%(channel)s", flag"#),
        ])
        #expect(instruct.meta == ["user": "alice", "name": "Bob Smith", "id_format": "%(channel)s", "flag": ""])
    }

    @Test(arguments: ["", "=x", " , "])
    func setMetaEmpty(value: String) {
        #expect(Self.error([("Grip-Set-Meta", value)]) == InstructError(.invalidMeta, "Grip-Set-Meta cannot be empty"))
    }

    // MARK: - Grip-Expose-Headers

    @Test func exposeHeadersWhitelistsTheClientHeaders() throws {
        let instruct = try Self.parse([
            ("Grip-Hold", "response"), ("Grip-Channel", "c"), ("Grip-Expose-Headers", "x-a, X-Missing"),
            ("X-A", "1"), ("X-B", "2"), ("Content-Type", "text/plain"),
        ])
        #expect(instruct.exposeHeaders == ["x-a", "X-Missing"])
        #expect(instruct.response.headers == [HeaderField(name: "X-A", value: "1")])
    }

    @Test func malformedQuotesInListHeaders() {
        #expect(
            Self.error([("Grip-Expose-Headers", #"X-A, "X-B"#)])
                == InstructError(.invalidHeader, "failed to parse Grip-Expose-Headers")
        )
        #expect(
            Self.error([("Grip-Link", #"</a>; rel="next"#)])
                == InstructError(.invalidLink, "failed to parse Grip-Link value")
        )
    }

    @Test func theFirstProblemInPushpinsOrderIsReported() {
        #expect(
            Self.error([
                ("Grip-Link", "bad; rel=next"), ("Grip-Status", "x"), ("Grip-Timeout", "x"), ("Grip-Hold", "x"),
            ])?
            .code == .invalidHoldMode
        )
        #expect(
            Self.error([("Grip-Link", "bad; rel=next"), ("Grip-Status", "x"), ("Grip-Timeout", "x")])?.code
                == .invalidTimeout
        )
        #expect(Self.error([("Grip-Link", "bad; rel=next"), ("Grip-Status", "x")])?.code == .invalidStatus)
    }

    @Test func singleValuedHeadersUseTheFirstOccurrence() throws {
        let instruct = try Self.parse([
            ("Grip-Hold", "stream"), ("Grip-Hold", "bogus"), ("Grip-Channel", "c"), ("Grip-Timeout", "10"),
            ("Grip-Timeout", "x"), ("Grip-Status", "201"), ("Grip-Status", "x"), ("Grip-Keep-Alive", "a"),
            ("Grip-Keep-Alive", "b; format=nope"),
        ])
        #expect(instruct.holdMode == .stream)
        #expect(instruct.timeout == 10)
        #expect(instruct.response.code == 201)
        #expect(instruct.keepAlive?.data == [0x61])
    }

    @Test(
        arguments: [
            (#"a\tb\"c"#, Array("abc".utf8)), (#"\x00\xff\xFF"#, [0, 255, 255]), (#"plain"#, Array("plain".utf8)),
        ] as [(String, [UInt8])]
    )
    func cstringDropsUnknownEscapes(value: String, data: [UInt8]) throws {
        let instruct = try Self.parse([("Grip-Keep-Alive", value + "; format=cstring")])
        #expect(instruct.keepAlive?.data == data)
    }

    // MARK: - Spec examples

    @Test func specResponseHoldExample() throws {
        // grip-spec §3.4 step 1.
        let instruct = try Self.parse(
            [
                ("Content-Type", "application/json"), ("Grip-Hold", "response"), ("Grip-Channel", "updates"),
                ("Grip-Timeout", "30"),
            ],
            body: #"{"items": []}"#
        )
        #expect(
            instruct
                == Instruct(
                    holdMode: .response,
                    channels: [Instruct.Channel(name: "updates")],
                    timeout: 30,
                    response: Instruct.Response(
                        code: 200,
                        reason: "OK",
                        headers: [HeaderField(name: "Content-Type", value: "application/json")],
                        body: Array(#"{"items": []}"#.utf8)
                    )
                )
        )
    }

    @Test func specStreamHoldExample() throws {
        // grip-spec §3.5 step 1 (the header value is the literal text `:\n\n`).
        let instruct = try Self.parse(
            [
                ("Content-Type", "text/event-stream"), ("Grip-Hold", "stream"), ("Grip-Channel", "news"),
                ("Grip-Keep-Alive", #":\n\n; format=cstring; timeout=20"#),
            ],
            body: "event: stream-open\ndata:\n\n"
        )
        #expect(instruct.holdMode == .stream)
        #expect(instruct.channels == [Instruct.Channel(name: "news")])
        #expect(instruct.keepAlive == Instruct.KeepAlive(data: Array(":\n\n".utf8), timeout: 20, mode: .idle))
        #expect(instruct.timeout == 55)
        #expect(instruct.response.headers == [HeaderField(name: "Content-Type", value: "text/event-stream")])
        #expect(instruct.response.body == Array("event: stream-open\ndata:\n\n".utf8))
    }

    @Test func conformanceSeedsSevenAndNine() throws {
        let seven = try Self.parse([
            ("Grip-Hold", "stream"), ("Grip-Channel", "s"), ("Grip-Keep-Alive", #"ka\n; format=cstring; timeout=3"#),
        ])
        #expect(seven.keepAlive == Instruct.KeepAlive(data: Array("ka\n".utf8), timeout: 3))
        let nine = try Self.parse([
            ("Grip-Hold", "stream"), ("Grip-Channel", "c; prev-id=5"), ("Grip-Link", "</l2>; rel=next; timeout=20"),
        ])
        #expect(nine.channels == [Instruct.Channel(name: "c", prevID: "5")])
        #expect(nine.nextLink == Instruct.Link(uri: "/l2", timeout: 20))
    }
}
