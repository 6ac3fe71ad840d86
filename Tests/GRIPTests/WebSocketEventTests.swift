import GRIP
import Testing

@Suite struct WebSocketEventTests {
    private static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test(
        arguments: [
            (WebSocketEvent.open, "OPEN\r\n"),
            (.text(Array("client says hi".utf8)), "TEXT e\r\nclient says hi\r\n"),
            (.binary([0, 1, 2]), "BINARY 3\r\n\u{0}\u{1}\u{2}\r\n"),
            (.ping([]), "PING\r\n"),
            (.ping(Array("p".utf8)), "PING 1\r\np\r\n"),
            (.pong([]), "PONG\r\n"),
            (.close(code: 1001, reason: Array("going".utf8)), "CLOSE 7\r\n\u{3}\u{E9}going\r\n"),
            (.close(code: 1000, reason: []), "CLOSE 2\r\n\u{3}\u{E8}\r\n"),
            (.close(code: nil, reason: []), "CLOSE\r\n"),
            (.disconnect, "DISCONNECT\r\n"),
        ]
    )
    func encodesAsTheSpecShows(event: WebSocketEvent, wire: String) throws {
        // Close codes put bytes above 0x7f on the wire: compare bytes, built from the scalars.
        let expected = wire.unicodeScalars.map { UInt8($0.value) }
        #expect(event.encoded == expected)
        #expect(try WebSocketEvent.decode(expected) == [event])
    }

    @Test func hexLengthsAreLowercaseBase16() {
        let content = [UInt8](repeating: 0x61, count: 300)
        #expect(WebSocketEvent.text(content).encoded.prefix(10) == Self.bytes("TEXT 12c\r\n")[...])
    }

    @Test func batchedEventsRoundTrip() throws {
        let events: [WebSocketEvent] = [
            .text(Self.bytes("ctl")), .text(Self.bytes("after")), .close(code: 4002, reason: []),
        ]
        let wire = WebSocketEvent.encode(events)
        #expect(Array(wire.prefix(12)) == Self.bytes("TEXT 3\r\nctl\r"))
        #expect(try WebSocketEvent.decode(wire) == events)
    }

    @Test func contentMayContainLineBreaks() throws {
        let content = Self.bytes("a\r\nb")
        #expect(try WebSocketEvent.decode(Self.bytes("TEXT 4\r\na\r\nb\r\n")) == [.text(content)])
    }

    @Test func emptyBodyHasNoEvents() throws {
        #expect(try WebSocketEvent.decode([]) == [])
    }

    @Test(
        arguments: [
            ("OPEN", WebSocketEventError.unterminatedLine),
            ("TEXT zz\r\nab\r\n", .badLength),
            ("TEXT \r\n", .badLength),
            ("TEXT 5\r\nab\r\n", .truncatedContent),
            ("TEXT 2\r\nabcd", .truncatedContent),
            ("CLOSE 1\r\nx\r\n", .badCloseCode),
            ("HELLO\r\n", .unknownEvent("HELLO")),
        ]
    )
    func rejectsMalformedBodies(body: String, error: WebSocketEventError) {
        #expect(throws: error) {
            try WebSocketEvent.decode(Self.bytes(body))
        }
    }
}

@Suite struct WebSocketControlMessageTests {
    private static func parse(_ json: String) throws -> WebSocketControlMessage {
        try WebSocketControlMessage(json: Array(json.utf8))
    }

    @Test func subscribe() throws {
        #expect(
            try Self.parse(#"{"type": "subscribe", "channel": "room-1"}"#)
                == .subscribe(channel: "room-1", filters: [], lastID: nil)
        )
        #expect(
            try Self.parse(#"{"type":"subscribe","channel":"c","filters":["skip-self"],"last-id":"7"}"#)
                == .subscribe(channel: "c", filters: ["skip-self"], lastID: "7")
        )
    }

    @Test func simpleTypes() throws {
        #expect(try Self.parse(#"{"type":"unsubscribe","channel":"c"}"#) == .unsubscribe(channel: "c"))
        #expect(try Self.parse(#"{"type":"detach"}"#) == .detach)
        #expect(try Self.parse(#"{"type":"flush-delayed"}"#) == .flushDelayed)
        #expect(try Self.parse(#"{"type":"session","id":""}"#) == .session(id: nil))
        #expect(
            try Self.parse(#"{"type":"set-meta","name":"user","value":"alice"}"#)
                == .setMeta(name: "user", value: "alice")
        )
        #expect(try Self.parse(#"{"type":"set-meta","name":"user"}"#) == .setMeta(name: "user", value: nil))
        #expect(try Self.parse(#"{"type":"close","code":4000,"reason":"bye"}"#) == .close(code: 4000, reason: "bye"))
        #expect(try Self.parse(#"{"type":"frobnicate"}"#) == .unknown(type: "frobnicate"))
    }

    @Test func keepAlive() throws {
        #expect(
            try Self.parse(#"{"type": "keep-alive", "content": "{}", "timeout": 30}"#)
                == .keepAlive(message: .init(type: .text, content: Array("{}".utf8)), timeout: 30, mode: .idle)
        )
        #expect(
            try Self.parse(#"{"type":"keep-alive","content":"p","message-type":"ping","mode":"interval"}"#)
                == .keepAlive(message: .init(type: .ping, content: Array("p".utf8)), timeout: 55, mode: .interval)
        )
        #expect(try Self.parse(#"{"type":"keep-alive"}"#) == .keepAlive(message: nil, timeout: 55, mode: .idle))
        #expect(
            try Self.parse(#"{"type":"send-delayed","content-bin":"AAEC"}"#)
                == .sendDelayed(message: .init(type: .binary, content: [0, 1, 2]), timeout: 1)
        )
    }

    @Test func refusesBadMessages() {
        #expect(throws: WebSocketControlError.notAnObject) { try Self.parse("[1]") }
        #expect(throws: WebSocketControlError.missingField("type")) { try Self.parse("{}") }
        #expect(throws: WebSocketControlError.missingField("channel")) {
            try Self.parse(#"{"type":"subscribe","channel":""}"#)
        }
        #expect(throws: WebSocketControlError.badField("message-type")) {
            try Self.parse(#"{"type":"keep-alive","content":"x","message-type":"shout"}"#)
        }
    }
}

@Suite struct WebSocketHandshakeTests {
    @Test func acceptValueFromRFC6455() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func gripExtension() {
        #expect(WebSocketHandshake.gripMessagePrefix(extensions: []) == nil)
        #expect(WebSocketHandshake.gripMessagePrefix(extensions: ["permessage-deflate"]) == nil)
        #expect(WebSocketHandshake.gripMessagePrefix(extensions: ["grip"]) == "m:")
        #expect(WebSocketHandshake.gripMessagePrefix(extensions: [#"x, grip; message-prefix="""#]) == "")
        #expect(WebSocketHandshake.gripMessagePrefix(extensions: [#"grip; message-prefix="msg:""#]) == "msg:")
    }
}

@Suite struct ContentBytesAcceptedTests {
    private let sent: [WebSocketEvent] = [.text(Array("hello".utf8)), .ping([]), .binary([1, 2, 3])]

    @Test func whatIsNotAcceptedIsSentAgainFromThePartlyTakenMessage() throws {
        #expect(try WebSocketEvent.unaccepted(self.sent, accepted: 8) == [])
        #expect(try WebSocketEvent.unaccepted(self.sent, accepted: 0) == self.sent)
        #expect(
            try WebSocketEvent.unaccepted(self.sent, accepted: 2) == [
                .text(Array("llo".utf8)), .ping([]), .binary([1, 2, 3]),
            ]
        )
        // The empty ping after a message taken whole goes with it, as in Pushpin.
        #expect(try WebSocketEvent.unaccepted(self.sent, accepted: 5) == [.binary([1, 2, 3])])
        #expect(try WebSocketEvent.unaccepted(self.sent, accepted: 7) == [.binary([3])])
    }

    @Test func aCloseIsTakenWholeOrNotAtAll() throws {
        let closing = [WebSocketEvent.text([1, 2]), .close(code: 1000, reason: Array("bye".utf8))]
        #expect(try WebSocketEvent.unaccepted(closing, accepted: 7) == [])
        #expect(try WebSocketEvent.unaccepted(closing, accepted: 2) == [closing[1]])
        #expect(try WebSocketEvent.unaccepted(closing, accepted: 1) == [.text([2]), closing[1]])
        #expect(throws: ContentBytesAcceptedError.self) { try WebSocketEvent.unaccepted(closing, accepted: 4) }
        #expect(throws: ContentBytesAcceptedError.self) { try WebSocketEvent.unaccepted(closing, accepted: 8) }
        #expect(try WebSocketEvent.unaccepted([.open], accepted: 0) == [])
    }
}
