import GRIP
import Testing

@Suite struct JSONValueTests {
    static func parse(_ text: String) -> JSONValue? {
        JSONValue.parse(Array(text.utf8))
    }

    @Test(
        arguments: [
            ("null", JSONValue.null),
            ("true", .bool(true)),
            ("false", .bool(false)),
            ("0", .int(0)),
            ("-12", .int(-12)),
            ("1.5", .double(1.5)),
            ("1e400", nil),
            ("\"a\\u00e9\\n\"", .string("a\u{E9}\n")),
            ("[1, true, null]", .array([.int(1), .bool(true), .null])),
            (#"{"b": {"c": []}, "a": "x"}"#, .object(["a": .string("x"), "b": .object(["c": .array([])])])),
            ("", nil),
            ("{", nil),
            ("nul", nil),
            (#""\ud800""#, nil),
        ] as [(String, JSONValue?)]
    )
    func parse(text: String, expected: JSONValue?) {
        #expect(Self.parse(text) == expected)
    }

    @Test(arguments: [
        "[1,]", #"{"a": 1,}"#, "01", "-", "1.", "1e", ".5", "'a'", "[1] x", "\"a\u{1}b\"", #""\x""#, "// c\n1",
    ])
    func nonJSONIsRefused(text: String) {
        #expect(Self.parse(text) == nil)
    }

    @Test func escapesAndSurrogatePairsAreDecoded() {
        #expect(Self.parse(#""\" \/ \b\f\r\t \ud83d\ude00""#) == .string("\" / \u{8}\u{C}\r\t \u{1F600}"))
        #expect(Self.parse(#""\ude00""#) == nil)
        #expect(Self.parse(#""\ud83d x""#) == nil)
    }

    @Test func nestingIsBounded() {
        #expect(Self.parse(String(repeating: "[", count: 400) + String(repeating: "]", count: 400)) != nil)
        #expect(Self.parse(String(repeating: "[", count: 100_000)) == nil)
    }

    @Test func booleansAreNotNumbersNorNumbersBooleans() {
        #expect(Self.parse("1") != .bool(true))
        #expect(Self.parse("true") != .int(1))
    }

    @Test func bigIntegersBecomeDoubles() {
        #expect(Self.parse("9223372036854775807") == .int(Int.max))
        #expect(Self.parse("92233720368547758080") == .double(92_233_720_368_547_758_080))
    }

    @Test func repeatedKeysDoNotFail() {
        guard case .object(let members)? = Self.parse(#"{"a": 1, "a": 2}"#) else {
            Issue.record("not parsed as an object")
            return
        }
        #expect(members.count == 1)
    }

    @Test func canonicalEncoding() {
        let value = JSONValue.object([
            "z": .array([.int(-1), .double(0.25), .bool(false), .null]),
            "a": .string("quote\" backslash\\ newline\n tab\t nul\u{0} \u{E9}"),
            "m": .object([:]),
        ])
        #expect(
            String(decoding: value.encoded(), as: UTF8.self)
                == #"{"a":"quote\" backslash\\ newline\n tab\t nul\u0000 é","m":{},"z":[-1,0.25,false,null]}"#
        )
        #expect(JSONValue.parse(value.encoded()) == value)
        #expect(JSONValue.string("s").stringValue == "s")
        #expect(JSONValue.int(1).stringValue == nil)
    }
}
