import GRIP
import Testing

@Suite struct InstructJSONTests {
    static let contentType = ("Content-Type", "application/grip-instruct")

    static func parse(_ json: String, status: Int = 200, headers: [(String, String)] = []) throws -> Instruct {
        try Instruct.parse(status: status, reason: "", headers: [Self.contentType] + headers, body: Array(json.utf8))
    }

    static func error(_ json: String, status: Int = 200, headers: [(String, String)] = []) -> InstructError? {
        do {
            _ = try Instruct.parse(
                status: status,
                reason: "",
                headers: [Self.contentType] + headers,
                body: Array(json.utf8)
            )
            return nil
        } catch {
            return error
        }
    }

    @Test func specExample() throws {
        // grip-spec §3.3, without the comments.
        let instruct = try Self.parse(
            """
            {
              "hold": {
                "mode": "response",
                "channels": [
                  {"name": "ch1", "prev-id": "5", "filters": ["skip-self"]}
                ],
                "timeout": 30,
                "keep-alive": {
                  "content": "ka\\n",
                  "timeout": 20
                },
                "meta": {"user": "alice"}
              },
              "response": {
                "code": 200, "reason": "OK",
                "headers": {"Content-Type": "text/plain"},
                "body": "text"
              }
            }
            """
        )
        #expect(
            instruct
                == Instruct(
                    holdMode: .response,
                    channels: [Instruct.Channel(name: "ch1", prevID: "5", filters: ["skip-self"])],
                    timeout: 30,
                    keepAlive: Instruct.KeepAlive(data: Array("ka\n".utf8), timeout: 20, mode: .interval),
                    meta: ["user": "alice"],
                    response: Instruct.Response(
                        code: 200,
                        reason: "OK",
                        headers: [HeaderField(name: "Content-Type", value: "text/plain")],
                        body: Array("text".utf8)
                    )
                )
        )
    }

    @Test func pygripcontrolShape() throws {
        let instruct = try Self.parse(
            #"{"hold": {"mode": "stream", "channels": [{"name": "a", "prev-id": "1"}, {"name": "b"}], "timeout": 3},"#
                + #" "response": {"headers": [["X-A", "1"], ["X-A", "2"]], "body-bin": "AAEC"}}"#
        )
        #expect(instruct.holdMode == .stream)
        #expect(instruct.channels == [Instruct.Channel(name: "a", prevID: "1"), Instruct.Channel(name: "b")])
        #expect(instruct.timeout == 5)
        #expect(
            instruct.response.headers == [HeaderField(name: "X-A", value: "1"), HeaderField(name: "X-A", value: "2")]
        )
        #expect(instruct.response.body == [0, 1, 2])
        #expect((instruct.response.code, instruct.response.reason) == (200, "OK"))
    }

    @Test func holdDefaultsToResponseModeAndDefaultTimeout() throws {
        let instruct = try Self.parse(#"{"hold": {"channels": [{"name": "c"}]}}"#)
        #expect(instruct.holdMode == .response)
        #expect(instruct.timeout == 55)
        #expect(instruct.keepAlive == nil)
    }

    @Test func responseWithoutHold() throws {
        // grip-spec §3.3: `{"response": {"code": 202, "body": "x"}}` answers `202 Accepted`, body `x`.
        let instruct = try Self.parse(#"{"response": {"code": 202, "body": "x"}}"#)
        #expect(instruct.holdMode == .none)
        #expect(instruct.response == Instruct.Response(code: 202, reason: "Accepted", headers: [], body: [0x78]))
    }

    @Test func emptyInstructIsAnEmptyDirectAnswer() throws {
        // Pushpin answers 502 here (a quirk the spec advises against copying).
        let instruct = try Self.parse("{}")
        #expect(instruct.holdMode == .none)
        #expect(instruct.response == Instruct.Response(code: 200, reason: "OK", headers: [], body: []))
    }

    @Test func httpHeadersOtherThanGripAreDiscarded() throws {
        let instruct = try Self.parse(
            #"{"hold": {"channels": [{"name": "c"}]}, "response": {"headers": {"X-A": "1"}, "body": "t"}}"#,
            headers: [("X-Backend", "dropped"), ("Content-Length", "99")]
        )
        #expect(instruct.response.headers == [HeaderField(name: "X-A", value: "1")])
    }

    @Test func headerFormIsParsedFirstAndJSONOverrides() throws {
        let instruct = try Self.parse(
            #"{"hold": {"mode": "stream", "channels": [{"name": "json"}], "keep-alive": {"content-bin": "S0EK"}}}"#,
            headers: [
                ("Grip-Hold", "response"), ("Grip-Channel", "header"), ("Grip-Status", "201 Made"),
                ("Grip-Link", "</next>; rel=next"), ("Grip-Keep-Alive", "old; mode=idle; timeout=9"),
                ("Grip-Set-Meta", "user=bob"),
            ]
        )
        #expect(instruct.holdMode == .stream)
        #expect(instruct.channels == [Instruct.Channel(name: "json")])
        #expect(instruct.nextLink == Instruct.Link(uri: "/next"))
        #expect((instruct.response.code, instruct.response.reason) == (201, "Made"))
        #expect(instruct.keepAlive == Instruct.KeepAlive(data: Array("KA\n".utf8), timeout: 55, mode: .idle))
        #expect(instruct.meta == ["user": "bob"])
    }

    @Test func responseCodeClearsTheReason() throws {
        let instruct = try Self.parse(#"{"response": {"code": 404}}"#, headers: [("Grip-Status", "200 Fine")])
        #expect((instruct.response.code, instruct.response.reason) == (404, "Not Found"))
        let given = try Self.parse(#"{"response": {"code": 404, "reason": "Gone Fishing"}}"#)
        #expect(given.response.reason == "Gone Fishing")
    }

    @Test func keepAliveTimeoutClampAndEmptyContent() throws {
        let clamped = try Self.parse(
            #"{"hold": {"mode": "stream", "channels": [], "keep-alive": {"content": "k", "timeout": 0}}}"#
        )
        #expect(clamped.keepAlive == Instruct.KeepAlive(data: [0x6B], timeout: 1, mode: .interval))
        let empty = try Self.parse(#"{"hold": {"mode": "stream", "channels": [], "keep-alive": {}}}"#)
        #expect(empty.keepAlive == nil)
    }

    @Test func mediaTypeWithParameters() throws {
        let instruct = try Instruct.parse(
            status: 200,
            reason: "OK",
            headers: [("content-type", "application/grip-instruct; charset=utf-8")],
            body: Array(#"{"response": {"body": "b"}}"#.utf8)
        )
        #expect(instruct.response.body == [0x62])
    }

    @Test(
        arguments: [
            ("{not json", "failed to parse application/grip-instruct content as JSON"),
            ("", "failed to parse application/grip-instruct content as JSON"),
            ("[]", "instruct must be an object"),
            ("\"x\"", "instruct must be an object"),
            (#"{"hold": []}"#, "instruct contains 'hold' with wrong type"),
            (
                #"{"hold": {"mode": "poll", "channels": []}}"#,
                "hold 'mode' must be set to either 'response' or 'stream'"
            ),
            (#"{"hold": {"mode": 1, "channels": []}}"#, "hold contains 'mode' with wrong type"),
            (#"{"hold": {}}"#, "hold does not contain 'channels'"),
            (#"{"hold": {"channels": {}}}"#, "hold contains 'channels' with wrong type"),
            (#"{"hold": {"channels": ["c"]}}"#, "channel is not an object"),
            (#"{"hold": {"channels": [{}]}}"#, "channel does not contain 'name'"),
            (#"{"hold": {"channels": [{"name": 5}]}}"#, "channel contains 'name' with wrong type"),
            (#"{"hold": {"channels": [{"name": ""}]}}"#, "channel contains 'name' with invalid value"),
            (#"{"hold": {"channels": [{"name": "c", "prev-id": 5}]}}"#, "channel contains 'prev-id' with wrong type"),
            (#"{"hold": {"channels": [{"name": "c", "filters": "x"}]}}"#, "channel contains 'filters' with wrong type"),
            (#"{"hold": {"channels": [{"name": "c", "filters": [1]}]}}"#, "filters contains value with wrong type"),
            (#"{"hold": {"channels": [], "timeout": "5"}}"#, "hold contains 'timeout' with wrong type"),
            (#"{"hold": {"channels": [], "timeout": 1.5}}"#, "hold contains 'timeout' with wrong type"),
            (#"{"hold": {"channels": [], "timeout": -1}}"#, "hold contains 'timeout' with invalid value"),
            (#"{"hold": {"channels": [], "keep-alive": "x"}}"#, "hold contains 'keep-alive' with wrong type"),
            (
                #"{"hold": {"channels": [], "keep-alive": {"content": 1}}}"#,
                "keep-alive contains 'content' with wrong type"
            ),
            (
                #"{"hold": {"channels": [], "keep-alive": {"content-bin": "@@"}}}"#,
                "keep-alive contains 'content-bin' with invalid value (not base64)"
            ),
            (
                #"{"hold": {"channels": [], "keep-alive": {"content": "k", "timeout": -2}}}"#,
                "keep-alive contains 'timeout' with invalid value"
            ),
            (#"{"hold": {"channels": [], "meta": {"user": 1}}}"#, "'meta' contains 'user' with wrong type"),
            (#"{"hold": {"channels": [], "meta": []}}"#, "hold contains 'meta' with wrong type"),
            (#"{"response": 5}"#, "instruct contains 'response' with wrong type"),
            (#"{"response": {"code": "200"}}"#, "response contains 'code' with wrong type"),
            (#"{"response": {"code": 1000}}"#, "response contains 'code' with invalid value"),
            (#"{"response": {"code": 0}}"#, "response contains 'code' with invalid value"),
            (#"{"response": {"reason": 5}}"#, "response contains 'reason' with wrong type"),
            (#"{"response": {"reason": "a\r\nb"}}"#, "response contains 'reason' with invalid value"),
            (#"{"response": {"headers": "x"}}"#, "response contains 'headers' with wrong type"),
            (#"{"response": {"headers": {"X": 1}}}"#, "headers contains 'X' with wrong type"),
            (#"{"response": {"headers": ["x"]}}"#, "headers contains element with wrong type"),
            (#"{"response": {"headers": [["x"]]}}"#, "headers contains list with wrong number of elements"),
            (#"{"response": {"headers": [[1, "v"]]}}"#, "header contains name element with wrong type"),
            (#"{"response": {"headers": [["n", 1]]}}"#, "header contains value element with wrong type"),
            (#"{"response": {"headers": {"X": "a\r\nInjected: 1"}}}"#, "headers contains 'X' with invalid characters"),
            (#"{"response": {"headers": {"Bad Name": "v"}}}"#, "headers contains 'Bad Name' with invalid characters"),
            (#"{"response": {"body": 5}}"#, "response contains 'body' with wrong type"),
            (#"{"response": {"body-bin": 5}}"#, "response contains 'body-bin' with wrong type"),
        ]
    )
    func invalid(json: String, message: String) {
        let error = Self.error(json)
        #expect(error?.message == message)
        #expect(error?.code == .invalidJSON || error?.code == .invalidInstruct)
    }

    @Test func statusMustBe200() {
        #expect(
            Self.error(#"{"response": {"body": "x"}}"#, status: 201)
                == InstructError(
                    .instructStatusNot200,
                    "response code for application/grip-instruct content must be 200"
                )
        )
    }
}
