import GRIP
import Testing

@Suite struct TNetStringTests {
    static func decode(_ text: String) throws -> TNetString {
        try TNetString.decode(Array(text.utf8))
    }

    @Test(
        arguments: [
            ("5:hello,", TNetString.string("hello")),
            ("0:,", .bytes([])),
            ("2:42#", .int(42)),
            ("3:-17#", .int(-17)),
            ("1:0#", .int(0)),
            ("3:1.5^", .float(1.5)),
            ("4:-0.5^", .float(-0.5)),
            ("4:true!", .bool(true)),
            ("5:false!", .bool(false)),
            ("0:~", .null),
            ("0:]", .list([])),
            ("0:}", .dict([])),
            ("11:1:a,1:1#0:~]", .list([.string("a"), .int(1), .null])),
            ("15:1:a,1:1#1:b,0:]}", .dict([TNetString.Member("a", .int(1)), TNetString.Member("b", .list([]))])),
        ]
    )
    func everyType(encoded: String, value: TNetString) throws {
        #expect(try Self.decode(encoded) == value)
        #expect(value.encoded() == Array(encoded.utf8))
    }

    @Test func binaryBytesAndNesting() throws {
        let value = TNetString.dict([
            TNetString.Member("bin", .bytes(Array(0...255))),
            TNetString.Member(
                "nested",
                .list([.dict([TNetString.Member("x", .list([.list([.float(2.25)])]))]), .bool(false)])
            ),
            TNetString.Member("big", .int(Int.max)),
            TNetString.Member("small", .int(Int.min)),
        ])
        #expect(try TNetString.decode(value.encoded()) == value)
        #expect(value["bin"] == .bytes(Array(0...255)))
        #expect(value["missing"] == nil)
        #expect(TNetString.int(1)["x"] == nil)
    }

    @Test(arguments: [0.1, -2.5, 1e-7, 1e300, -0.0, 123_456.789, Double.leastNonzeroMagnitude])
    func floatsRoundTrip(number: Double) throws {
        let decoded = try TNetString.decode(TNetString.float(number).encoded())
        #expect(decoded == .float(number))
    }

    @Test func bytesThatLookLikeTNetStrings() throws {
        let tricky = TNetString.dict([
            TNetString.Member(key: Array("1:a,}".utf8), value: .string("0:~]:,#^!")),
            TNetString.Member("ü ✓", .bytes([UInt8(ascii: ":"), 0, UInt8(ascii: "}")])),
            TNetString.Member("", .list([.dict([]), .list([]), .bytes([])])),
        ])
        #expect(try TNetString.decode(tricky.encoded()) == tricky)
    }

    /// Random values of every type, nested, encode and decode back to themselves.
    @Test func randomValuesRoundTrip() throws {
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<500 {
            let value = Self.randomValue(depth: 0, using: &generator)
            #expect(try TNetString.decode(value.encoded()) == value)
        }
    }

    static func randomValue(depth: Int, using generator: inout SplitMix64) -> TNetString {
        let kinds = depth < 4 ? 7 : 5
        switch Int.random(in: 0..<kinds, using: &generator) {
        case 0:
            return .bytes(
                (0..<Int.random(in: 0..<20, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator)
                }
            )
        case 1:
            return .int(Int.random(in: Int.min...Int.max, using: &generator))
        case 2:
            return .float(Double.random(in: -1e12...1e12, using: &generator))
        case 3:
            return .bool(Bool.random(using: &generator))
        case 4:
            return .null
        case 5:
            return .list(
                (0..<Int.random(in: 0..<4, using: &generator)).map { _ in
                    Self.randomValue(depth: depth + 1, using: &generator)
                }
            )
        default:
            return .dict(
                (0..<Int.random(in: 0..<4, using: &generator)).map { index in
                    TNetString.Member("k\(index)", Self.randomValue(depth: depth + 1, using: &generator))
                }
            )
        }
    }

    @Test func pushpinStatsFrameFromTheSpec() throws {
        // grip-spec Appendix A.5 (after the `conn T` prefix).
        let frame =
            "109:3:ttl,3:120#4:type,4:http,12:peer-address,9:127.0.0.1,2:id,14:condure:1-0-32,4:from,21:pushpin-handler_18033,}"
        let value = try Self.decode(frame)
        #expect(value["ttl"] == .int(120))
        #expect(value["peer-address"] == .string("127.0.0.1"))
        #expect(value.encoded() == Array(frame.utf8))
    }

    @Test(
        arguments: [
            ("", TNetStringError.Code.invalidLength),
            (":x,", .invalidLength),
            ("abc", .invalidLength),
            ("5hello,", .invalidLength),
            ("1234567890:x,", .invalidLength),
            ("01:x,", .invalidLength),
            ("5:hell", .truncated),
            ("5:hello", .truncated),
            ("999:x,", .truncated),
            ("1:xz", .invalidType),
            ("2:4x#", .invalidPayload),
            ("0:#", .invalidPayload),
            ("2:+4#", .invalidPayload),
            ("20:99999999999999999999#", .invalidPayload),
            ("3:abc^", .invalidPayload),
            ("3:inf^", .invalidPayload),
            ("3:yes!", .invalidPayload),
            ("1:x~", .invalidPayload),
            ("4:1:a#}", .invalidPayload),
            ("4:1:a,}", .invalidPayload),
            ("5:1:a,]", .truncated),
            ("3:2:a]", .truncated),
            ("1:a,1:b,", .trailingBytes),
            ("0:~ ", .trailingBytes),
            ("-1:,", .invalidLength),
            ("1.5:ab,", .invalidLength),
            ("9:1:a,5:hi,}", .truncated),
            ("8:3:abc,0:~}", .invalidPayload),
            ("2:0:]", .truncated),
        ]
    )
    func malformed(input: String, code: TNetStringError.Code) {
        #expect {
            _ = try Self.decode(input)
        } throws: { error in
            (error as? TNetStringError)?.code == code
        }
    }

    @Test func nestingLimit() {
        var value = TNetString.null
        for _ in 0..<TNetString.maximumDepth {
            value = .list([value])
        }
        #expect(throws: TNetStringError.self) { try TNetString.decode(value.encoded()) }
        var shallower = TNetString.null
        for _ in 0..<(TNetString.maximumDepth - 1) {
            shallower = .list([shallower])
        }
        #expect(throws: Never.self) { try TNetString.decode(shallower.encoded()) }
    }

    @Test func errorDescription() {
        #expect(
            TNetStringError(.truncated, "payload of 5 bytes and its type do not fit", offset: 0).description
                == "invalid tnetstring at byte 0: payload of 5 bytes and its type do not fit"
        )
    }

    // MARK: - Items

    /// What `tnetstring_dumps` in the conformance suite's grip.py sends.
    static func item(_ members: [TNetString.Member]) -> [UInt8] {
        TNetString.dict(members).encoded()
    }

    @Test func tnetstringItemMapsToTheSameItemAsJSON() throws {
        let tnet = try PublishItem.parse(
            tnetstring: Self.item([
                TNetString.Member("channel", .string("c")),
                TNetString.Member("id", .string("2")),
                TNetString.Member("prev-id", .string("1")),
                TNetString.Member("no-seq", .bool(true)),
                TNetString.Member("size", .int(3)),
                TNetString.Member("meta", .dict([TNetString.Member("sender", .string("alice"))])),
                TNetString.Member(
                    "formats",
                    .dict([
                        TNetString.Member(
                            "http-response",
                            .dict([
                                TNetString.Member("code", .int(201)),
                                TNetString.Member("headers", .list([.list([.string("X-A"), .string("1")])])),
                                TNetString.Member("body", .string("b")),
                            ])
                        ),
                        TNetString.Member("http-stream", .dict([TNetString.Member("content", .string("zmq tnet\n"))])),
                        TNetString.Member("ws-message", .dict([TNetString.Member("content", .string("w"))])),
                    ])
                ),
            ])
        )
        let json = try PublishItem.parse(
            json: Array(
                (#"{"channel": "c", "id": "2", "prev-id": "1", "no-seq": true, "size": 3, "meta": {"sender": "alice"},"#
                    + #" "formats": {"http-response": {"code": 201, "headers": [["X-A", "1"]], "body": "b"},"#
                    + #" "http-stream": {"content": "zmq tnet\n"}, "ws-message": {"content": "w"}}}"#).utf8
            )
        )
        #expect(tnet == json)
    }

    @Test func tnetstringContentIsRawBytes() throws {
        let item = try PublishItem.parse(
            tnetstring: Self.item([
                TNetString.Member("channel", .string("c")),
                TNetString.Member(
                    "formats",
                    .dict([
                        TNetString.Member("http-stream", .dict([TNetString.Member("content", .bytes([0xFF, 0x00]))])),
                        TNetString.Member("ws-message", .dict([TNetString.Member("content-bin", .bytes([0xFE]))])),
                    ])
                ),
            ])
        )
        #expect(item.formats.httpStream?.content == [0xFF, 0x00])
        #expect(item.formats.wsMessage == WSMessageFormat(type: .binary, content: [0xFE]))
    }

    @Test func tnetstringMissingBodyWordsTheErrorWithoutBin() {
        #expect(throws: PublishError(.invalidItem, "'http-response' does not contain 'body' or 'body-patch'")) {
            try PublishItem.parse(
                tnetstring: Self.item([
                    TNetString.Member("channel", .string("c")),
                    TNetString.Member("formats", .dict([TNetString.Member("http-response", .dict([]))])),
                ])
            )
        }
    }

    @Test func zmqFramePrefixes() throws {
        let tnet = Self.item([
            TNetString.Member("channel", .string("c")),
            TNetString.Member(
                "formats",
                .dict([TNetString.Member("http-stream", .dict([TNetString.Member("content", .string("zmq T\n"))]))])
            ),
        ])
        let expected = PublishItem(
            channel: "c",
            formats: PublishFormats(httpStream: HTTPStreamFormat(content: Array("zmq T\n".utf8)))
        )
        #expect(try PublishItem.parse(zmqMessage: tnet) == expected)
        #expect(try PublishItem.parse(zmqMessage: Array("T".utf8) + tnet) == expected)
        #expect(
            try PublishItem.parse(
                zmqMessage: Array(#"J{"channel": "c", "formats": {"http-stream": {"content": "zmq T\n"}}}"#.utf8)
            )
                == expected
        )
        #expect(try PublishItem.parse(zmqMessage: tnet, channel: "topic").channel == "topic")
    }

    @Test func malformedFrameDescriptions() {
        #expect {
            _ = try PublishItem.parse(zmqMessage: Array("5:abc".utf8))
        } throws: { error in
            (error as? PublishError)?.description
                == "invalid tnetstring at byte 0: payload of 5 bytes and its type do not fit"
        }
        #expect {
            _ = try PublishItem.parse(zmqMessage: Array("J{".utf8))
        } throws: { error in
            (error as? PublishError)?.description == "item is not valid JSON"
        }
    }

    @Test(arguments: ["Jnot json at all", "garbage that is no tnetstring", "", "T"])
    func malformedZmqFrames(frame: String) {
        #expect {
            _ = try PublishItem.parse(zmqMessage: Array(frame.utf8))
        } throws: { error in
            (error as? PublishError)?.code == .invalidJSON
        }
    }
}

/// A seeded generator (SplitMix64), so random round trips are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
