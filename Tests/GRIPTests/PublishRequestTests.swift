import GRIP
import Testing

@Suite struct PublishRequestTests {
    static func items(_ json: String) throws -> [PublishItem] {
        try PublishRequest.parse(body: Array(json.utf8))
    }

    static func error(_ json: String) -> PublishError? {
        do {
            _ = try PublishRequest.parse(body: Array(json.utf8))
            return nil
        } catch {
            return error
        }
    }

    static func item(_ json: String) throws -> PublishItem {
        try #require(try Self.items(#"{"items": [\#(json)]}"#).first)
    }

    /// The error for a request with one item, or with `{"channel": "c", "formats": {<formats>}}`.
    static func itemError(_ json: String) -> PublishError? {
        Self.error(#"{"items": [\#(json)]}"#)
    }

    static func formatError(_ formats: String) -> PublishError? {
        Self.itemError(#"{"channel": "c", "formats": {\#(formats)}}"#)
    }

    // MARK: - Request level (conformance: test_publish_api.py)

    @Test func emptyItemListIsFine() throws {
        #expect(try Self.items(#"{"items": []}"#).isEmpty)
    }

    @Test(
        arguments: [
            ("{not json", PublishError.Code.invalidJSON, "json"),
            ("", .invalidJSON, "json"),
            ("[]", .notAnObject, "object"),
            ("5", .notAnObject, "object"),
            ("{}", .missingItems, "items"),
            (#"{"items": {}}"#, .invalidItems, "items"),
            (#"{"items": "x"}"#, .invalidItems, "items"),
        ]
    )
    func requestErrors(body: String, code: PublishError.Code, keyword: String) throws {
        let error = try #require(Self.error(body))
        #expect(error.code == code)
        #expect(error.description.lowercased().contains(keyword))
        #expect(error.itemIndex == nil)
    }

    @Test func pushpinTexts() throws {
        #expect(Self.error("{x")?.description == "Body is not valid JSON.")
        #expect(Self.error("{}")?.description == "Invalid format: object does not contain 'items'")
        #expect(Self.error(#"{"items": 1}"#)?.description == "Invalid format: object contains 'items' with wrong type")
        #expect(
            Self.error(
                #"{"items": [{"channel": "c", "formats": {"http-stream": {"content": "x"}}}, {"formats": {}}]}"#
            )?
            .description == "Invalid format: items[1]: publish item object does not contain 'channel'"
        )
    }

    @Test func oneBadItemFailsTheBatch() throws {
        let error = try #require(
            Self.error(
                #"{"items": [{"channel": "c", "formats": {"http-stream": {"content": "from bad batch\n"}}},"#
                    + #" {"formats": {"http-stream": {"content": "no channel"}}}]}"#
            )
        )
        #expect(error.code == .invalidItem)
        #expect(error.itemIndex == 1)
        #expect(error.description.contains("channel"))
    }

    // MARK: - Item fields

    @Test func everyItemField() throws {
        let item = try Self.item(
            #"{"channel": "c", "id": "6", "prev-id": "5", "meta": {"sender": "alice", "skip_users": "a,b"},"#
                + #" "size": 10, "no-seq": true, "formats": {"http-stream": {"content": "msg6"}}}"#
        )
        #expect(
            item
                == PublishItem(
                    channel: "c",
                    id: "6",
                    prevID: "5",
                    formats: PublishFormats(httpStream: HTTPStreamFormat(content: Array("msg6".utf8))),
                    meta: ["sender": "alice", "skip_users": "a,b"],
                    size: 10,
                    noSeq: true
                )
        )
    }

    @Test func defaults() throws {
        let item = try Self.item(#"{"channel": "c", "formats": {"http-stream": {"content": "x"}}}"#)
        #expect(item.id == nil)
        #expect(item.prevID == nil)
        #expect(item.meta.isEmpty)
        #expect(item.size == nil)
        #expect(!item.noSeq)
    }

    @Test func legacyTopLevelFormats() throws {
        let item = try Self.item(
            #"{"channel": "c", "http-response": {"body": "r"}, "http-stream": {"content": "s"},"#
                + #" "ws-message": {"content": "w"}}"#
        )
        #expect(item.formats.httpResponse == HTTPResponseFormat(body: .bytes([0x72])))
        #expect(item.formats.httpStream == HTTPStreamFormat(content: [0x73]))
        #expect(item.formats.wsMessage == WSMessageFormat(content: [0x77]))
    }

    @Test func unknownFormatsAreIgnored() throws {
        let only = try Self.item(#"{"channel": "c", "formats": {"x-no-such-format": {"content": "?"}}}"#)
        #expect(only.formats.isEmpty)
        let beside = try Self.item(
            #"{"channel": "c", "formats": {"http-stream": {"content": "known\n"}, "x-no-such-format": {"whatever": [1, 2, 3]}}}"#
        )
        #expect(beside.formats == PublishFormats(httpStream: HTTPStreamFormat(content: Array("known\n".utf8))))
    }

    @Test(
        arguments: [
            ("5", "publish item object is not an object"),
            (#"{"formats": {"http-stream": {"content": "x"}}}"#, "publish item object does not contain 'channel'"),
            (
                #"{"channel": 5, "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'channel' with wrong type"
            ),
            (
                #"{"channel": "", "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'channel' with invalid value"
            ),
            (#"{"channel": "c"}"#, "no formats specified"),
            (#"{"channel": "c", "formats": {}}"#, "no formats specified"),
            (#"{"channel": "c", "formats": []}"#, "publish item object contains 'formats' with wrong type"),
            (
                #"{"channel": "c", "id": 6, "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'id' with wrong type"
            ),
            (
                #"{"channel": "c", "prev-id": [], "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'prev-id' with wrong type"
            ),
            (
                #"{"channel": "c", "meta": "x", "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'meta' with wrong type"
            ),
            (
                #"{"channel": "c", "meta": {"sender": 1}, "formats": {"http-stream": {"content": "x"}}}"#,
                "'meta' contains 'sender' with wrong type"
            ),
            (
                #"{"channel": "c", "size": "1", "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'size' with wrong type"
            ),
            (
                #"{"channel": "c", "size": -1, "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'size' with invalid value"
            ),
            (
                #"{"channel": "c", "no-seq": 1, "formats": {"http-stream": {"content": "x"}}}"#,
                "publish item object contains 'no-seq' with wrong type"
            ),
        ]
    )
    func itemErrors(json: String, message: String) throws {
        let error = try #require(Self.itemError(json))
        #expect(error.code == .invalidItem)
        #expect(error.message == message)
        #expect(error.itemIndex == 0)
        #expect(error.description == "Invalid format: items[0]: \(message)")
    }

    // MARK: - http-response

    @Test func httpResponseEveryField() throws {
        let item = try Self.item(
            #"{"channel": "c", "formats": {"http-response": {"code": 201, "reason": "Made","#
                + #" "headers": {"X-Pub": "yes", "Content-Type": "text/plain"}, "body": "published body\n","#
                + #" "content-filters": ["var-subst"]}}}"#
        )
        #expect(
            item.formats.httpResponse
                == HTTPResponseFormat(
                    code: 201,
                    reason: "Made",
                    headers: [
                        HeaderField(name: "Content-Type", value: "text/plain"),
                        HeaderField(name: "X-Pub", value: "yes"),
                    ],
                    body: .bytes(Array("published body\n".utf8)),
                    contentFilters: ["var-subst"]
                )
        )
    }

    @Test func httpResponseDefaultsHeaderListBinaryBodyAndPatch() throws {
        let plain = try #require(
            try Self.item(#"{"channel": "c", "formats": {"http-response": {"body": ""}}}"#).formats.httpResponse
        )
        #expect(plain.code == nil && plain.reason == nil)
        #expect((plain.effectiveCode, plain.effectiveReason) == (200, "OK"))
        #expect(
            try Self.item(#"{"channel": "c", "formats": {"http-response": {"code": 418, "body": ""}}}"#).formats
                .httpResponse?.effectiveReason == "Undefined Reason"
        )

        let list = try Self.item(
            #"{"channel": "c", "formats": {"http-response": {"headers": [["X-B", "2"], ["X-A", "1"], ["X-B", "3"]], "body-bin": "AAEC/w=="}}}"#
        )
        #expect(
            list.formats.httpResponse
                == HTTPResponseFormat(
                    headers: [
                        HeaderField(name: "X-B", value: "2"), HeaderField(name: "X-A", value: "1"),
                        HeaderField(name: "X-B", value: "3"),
                    ],
                    body: .bytes([0, 1, 2, 255])
                )
        )
        let patch = try Self.item(
            #"{"channel": "c", "formats": {"http-response": {"body-patch": [{"op": "replace", "path": "/a", "value": 2}]}}}"#
        )
        #expect(
            patch.formats.httpResponse?.body
                == .patch([.object(["op": .string("replace"), "path": .string("/a"), "value": .int(2)])])
        )
    }

    @Test(arguments: [("hint", PublishAction.hint), ("close", .close), ("send", .send)])
    func httpResponseActions(action: String, expected: PublishAction) throws {
        let item = try Self.item(
            #"{"channel": "c", "formats": {"http-response": {"action": "\#(action)", "body": "b"}}}"#
        )
        #expect(item.formats.httpResponse?.action == expected)
    }

    @Test(
        arguments: [
            (#""http-response": 5"#, "'http-response' is not an object"),
            (
                #""http-response": {"code": 200}"#,
                "'http-response' does not contain 'body', 'body-bin', or 'body-patch'"
            ),
            (
                #""http-response": {"action": "explode", "body": ""}"#,
                "'http-response' contains 'action' with unknown value"
            ),
            (
                #""http-response": {"action": "refresh", "body": ""}"#,
                "'http-response' contains 'action' with unknown value"
            ),
            (#""http-response": {"action": 1}"#, "'http-response' contains 'action' with wrong type"),
            (#""http-response": {"code": "201", "body": ""}"#, "'http-response' contains 'code' with wrong type"),
            (#""http-response": {"code": 1000, "body": ""}"#, "'http-response' contains 'code' with invalid value"),
            (#""http-response": {"code": 0, "body": ""}"#, "'http-response' contains 'code' with invalid value"),
            (#""http-response": {"reason": 5, "body": ""}"#, "'http-response' contains 'reason' with wrong type"),
            (
                #""http-response": {"reason": "a\nb", "body": ""}"#,
                "'http-response' contains 'reason' with invalid value (control characters)"
            ),
            (#""http-response": {"headers": 5, "body": ""}"#, "'http-response' contains 'headers' with wrong type"),
            (#""http-response": {"headers": {"X": 5}, "body": ""}"#, "headers contains 'X' with wrong type"),
            (#""http-response": {"headers": [5], "body": ""}"#, "headers contains element with wrong type"),
            (
                #""http-response": {"headers": [["X", "1", "2"]], "body": ""}"#,
                "headers contains list with wrong number of elements"
            ),
            (
                #""http-response": {"headers": [[null, "1"]], "body": ""}"#,
                "header contains name element with wrong type"
            ),
            (#""http-response": {"headers": [["X", 1]], "body": ""}"#, "header contains value element with wrong type"),
            (#""http-response": {"body": 5}"#, "'http-response' contains 'body' with wrong type"),
            (#""http-response": {"body-bin": 5}"#, "'http-response' contains 'body-bin' with wrong type"),
            (
                #""http-response": {"body-bin": "***"}"#,
                "'http-response' contains 'body-bin' with invalid value (not base64)"
            ),
            (#""http-response": {"body-patch": {}}"#, "'http-response' contains 'body-patch' with wrong type"),
            (
                #""http-response": {"body": "", "content-filters": "x"}"#,
                "'http-response' contains 'content-filters' with wrong type"
            ),
            (
                #""http-response": {"body": "", "content-filters": [1]}"#,
                "content-filters contains element with wrong type"
            ),
        ]
    )
    func httpResponseErrors(formats: String, message: String) throws {
        let error = try #require(Self.formatError(formats))
        #expect(error.code == .invalidItem)
        #expect(error.message == message)
        #expect(error.itemIndex == 0)
    }

    @Test(
        arguments: [
            (
                #"{"X-Evil": "a\r\nSet-Cookie: x=1"}"#,
                "'http-response' contains header 'X-Evil' with invalid characters"
            ),
            (#"{"X-Nul": "a\u0000b"}"#, "'http-response' contains header 'X-Nul' with invalid characters"),
            (#"{"X-Lf": "a\nb"}"#, "'http-response' contains header 'X-Lf' with invalid characters"),
            (#"{"Bad Name": "v"}"#, "'http-response' contains header 'Bad Name' with invalid characters"),
            (#"{"Bad:Name": "v"}"#, "'http-response' contains header 'Bad:Name' with invalid characters"),
            (#"[["X\r\nY", "v"]]"#, #"'http-response' contains header 'X\x0D\x0AY' with invalid characters"#),
            (#"[["", "v"]]"#, "'http-response' contains header '' with invalid characters"),
            (#"{"Connection": "close"}"#, "'http-response' contains header 'Connection', which cannot be published"),
            (
                #"{"transfer-encoding": "chunked"}"#,
                "'http-response' contains header 'transfer-encoding', which cannot be published"
            ),
            (
                #"{"Content-Length": "5"}"#,
                "'http-response' contains header 'Content-Length', which cannot be published"
            ),
            (
                #"{"Keep-Alive": "timeout=5"}"#,
                "'http-response' contains header 'Keep-Alive', which cannot be published"
            ),
            (#"{"Upgrade": "websocket"}"#, "'http-response' contains header 'Upgrade', which cannot be published"),
            (#"{"TE": "trailers"}"#, "'http-response' contains header 'TE', which cannot be published"),
            (#"{"Trailer": "X"}"#, "'http-response' contains header 'Trailer', which cannot be published"),
            (
                #"{"Proxy-Connection": "x"}"#,
                "'http-response' contains header 'Proxy-Connection', which cannot be published"
            ),
        ]
    )
    func forbiddenHeaders(headers: String, message: String) throws {
        let error = try #require(Self.formatError(#""http-response": {"headers": \#(headers), "body": ""}"#))
        #expect(error.code == .forbiddenHeader)
        #expect(error.message == message)
        #expect(error.description == "Invalid format: items[0]: \(message)")
    }

    @Test func allowedHeaders() throws {
        let item = try Self.item(
            #"{"channel": "c", "formats": {"http-response": {"headers": [["Grip-Expose-Headers", "X-A"],"#
                + #" ["X-Tab", "a\tb"], ["Set-Cookie", "a=1; Path=/"], ["X-Utf8", "caf\u00e9"]], "body": ""}}}"#
        )
        #expect(item.formats.httpResponse?.headers.count == 4)
    }

    // MARK: - http-stream

    @Test(
        arguments: [
            (#"{"content": "hello one\n"}"#, HTTPStreamFormat(content: Array("hello one\n".utf8))),
            (#"{"content-bin": "YmluYXJ5IGRhdGEK"}"#, HTTPStreamFormat(content: Array("binary data\n".utf8))),
            (
                #"{"content-bin": "YmluYXJ5IGRhdGEK", "content": "ignored"}"#,
                HTTPStreamFormat(content: Array("binary data\n".utf8))
            ),
            (#"{"content-bin": "YmluYXJ5\nIGRhdGEK\n"}"#, HTTPStreamFormat(content: Array("binary data\n".utf8))),
            (#"{"content-bin": "YQ"}"#, HTTPStreamFormat(content: Array("a".utf8))),
            (#"{"action": "close"}"#, HTTPStreamFormat(action: .close)),
            (#"{"action": "hint"}"#, HTTPStreamFormat(action: .hint)),
            (#"{"action": "close", "content": 5}"#, HTTPStreamFormat(action: .close)),
            (
                #"{"content": "x", "content-filters": ["build-id"]}"#,
                HTTPStreamFormat(content: [0x78], contentFilters: ["build-id"])
            ),
            (#"{"content": "\u00fcnicode"}"#, HTTPStreamFormat(content: Array("\u{FC}nicode".utf8))),
        ]
    )
    func httpStream(json: String, expected: HTTPStreamFormat) throws {
        #expect(
            try Self.item(#"{"channel": "s", "formats": {"http-stream": \#(json)}}"#).formats.httpStream == expected
        )
    }

    @Test(
        arguments: [
            (#"{}"#, "'http-stream' does not contain 'content' or 'content-bin'"),
            (#"{"action": "send"}"#, "'http-stream' does not contain 'content' or 'content-bin'"),
            (#"{"content": 5}"#, "'http-stream' contains 'content' with wrong type"),
            (#"{"content-bin": 5}"#, "'http-stream' contains 'content-bin' with wrong type"),
            (#"{"content-bin": "a"}"#, "'http-stream' contains 'content-bin' with invalid value (not base64)"),
            (#"{"action": "refresh"}"#, "'http-stream' contains 'action' with unknown value"),
            (#"[]"#, "'http-stream' is not an object"),
        ]
    )
    func httpStreamErrors(json: String, message: String) throws {
        let error = try #require(Self.formatError(#""http-stream": \#(json)"#))
        #expect(error.message == message)
    }

    // MARK: - ws-message

    @Test(
        arguments: [
            (#"{"content": "pub text"}"#, WSMessageFormat(type: .text, content: Array("pub text".utf8))),
            (#"{"content-bin": "AAEC"}"#, WSMessageFormat(type: .binary, content: [0, 1, 2])),
            (#"{"type": "text", "content-bin": "AAEC"}"#, WSMessageFormat(type: .text, content: [0, 1, 2])),
            (#"{"type": "binary", "content": "b"}"#, WSMessageFormat(type: .binary, content: [0x62])),
            (#"{"type": "ping", "content": "x"}"#, WSMessageFormat(type: .ping, content: [0x78])),
            (#"{"type": "ping"}"#, WSMessageFormat(type: .ping)),
            (#"{"type": "pong"}"#, WSMessageFormat(type: .pong)),
            (
                #"{"action": "close", "code": 4001, "reason": "pub close"}"#,
                WSMessageFormat(action: .close, closeCode: 4001, closeReason: "pub close")
            ),
            (#"{"action": "close"}"#, WSMessageFormat(action: .close)),
            (#"{"action": "hint"}"#, WSMessageFormat(action: .hint)),
            (#"{"action": "refresh"}"#, WSMessageFormat(action: .refresh)),
            (
                #"{"content": "f", "content-filters": ["skip-self"]}"#,
                WSMessageFormat(content: [0x66], contentFilters: ["skip-self"])
            ),
        ]
    )
    func wsMessage(json: String, expected: WSMessageFormat) throws {
        #expect(try Self.item(#"{"channel": "w", "formats": {"ws-message": \#(json)}}"#).formats.wsMessage == expected)
    }

    @Test(
        arguments: [
            (#"{}"#, "'ws-message' does not contain 'content' or 'content-bin'"),
            (#"{"type": "text"}"#, "'ws-message' does not contain 'content' or 'content-bin'"),
            (#"{"type": "binary"}"#, "'ws-message' does not contain 'content' or 'content-bin'"),
            (#"{"type": "shout", "content": "x"}"#, "'ws-message' contains 'type' with unknown value"),
            (#"{"type": 1, "content": "x"}"#, "'ws-message' contains 'type' with wrong type"),
            (#"{"content": 1}"#, "'ws-message' contains 'content' with wrong type"),
            (#"{"content-bin": 1}"#, "'ws-message' contains 'content-bin' with wrong type"),
            (#"{"action": "close", "code": "4001"}"#, "'ws-message' contains 'code' with wrong type"),
            (#"{"action": "close", "code": -1}"#, "'ws-message' contains 'code' with invalid value"),
            (#"{"action": "close", "code": 70000}"#, "'ws-message' contains 'code' with invalid value"),
            (#"{"action": "close", "reason": 5}"#, "'ws-message' contains 'reason' with wrong type"),
            (
                #"{"action": "close", "reason": "\#(String(repeating: "r", count: 124))"}"#,
                "'ws-message' contains 'reason' with invalid value (longer than 123 bytes)"
            ),
            (#"{"action": "dance"}"#, "'ws-message' contains 'action' with unknown value"),
        ]
    )
    func wsMessageErrors(json: String, message: String) throws {
        let error = try #require(Self.formatError(#""ws-message": \#(json)"#))
        #expect(error.message == message)
    }

    // MARK: - Single items (ZeroMQ `J` form)

    @Test func singleItemJSON() throws {
        let item = try PublishItem.parse(
            json: Array(#"{"channel": "c", "formats": {"http-stream": {"content": "zmq json\n"}}}"#.utf8)
        )
        #expect(item.channel == "c")
        #expect(item.formats.httpStream?.content == Array("zmq json\n".utf8))
    }

    @Test func singleItemTopicChannelOverridesTheItemsChannel() throws {
        let item = try PublishItem.parse(
            json: Array(#"{"channel": "ignored", "formats": {"http-stream": {"content": "x"}}}"#.utf8),
            channel: "topic"
        )
        #expect(item.channel == "topic")
        let noChannel = try PublishItem.parse(
            json: Array(#"{"formats": {"http-stream": {"content": "x"}}}"#.utf8),
            channel: "t"
        )
        #expect(noChannel.channel == "t")
    }

    @Test func singleItemErrors() {
        #expect(throws: PublishError(.invalidJSON, "item is not valid JSON")) {
            try PublishItem.parse(json: Array("Jnot json at all".utf8))
        }
        #expect(throws: PublishError(.invalidItem, "publish item object does not contain 'channel'")) {
            try PublishItem.parse(json: Array(#"{"formats": {"http-stream": {"content": "x"}}}"#.utf8))
        }
    }
}
