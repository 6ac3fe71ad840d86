import GRIP
import Testing

@Suite struct HeaderParametersTests {
    typealias Parameter = HeaderParameters.Parameter

    @Test(
        arguments: [
            ("a", ["a"]),
            ("a, b,c", ["a", "b", "c"]),
            (" a ,, b ", ["a", "b"]),
            (#"a; x="1,2", b"#, [#"a; x="1,2""#, "b"]),
            (#"a; x="q\",1", b"#, [#"a; x="q\",1""#, "b"]),
            ("", []),
            (" , ", []),
        ]
    )
    func split(value: String, parts: [String]) {
        #expect(HeaderParameters.split(value) == parts)
    }

    @Test(arguments: [#"a; x="open"#, #"a; x="esc\"#, #"""#])
    func splitUnterminatedQuote(value: String) {
        #expect(HeaderParameters.split(value) == nil)
    }

    @Test func parameters() throws {
        let parsed = try #require(
            HeaderParameters(parsing: #" ch ; prev-id = 5 ;filter=a; FILTER="b; c" ; flag; empty=; q="x\"y\\z""#)
        )
        #expect(parsed.first == Parameter(name: "ch", value: nil))
        #expect(
            parsed.parameters == [
                Parameter(name: "prev-id", value: "5"), Parameter(name: "filter", value: "a"),
                Parameter(name: "FILTER", value: "b; c"), Parameter(name: "flag", value: nil),
                Parameter(name: "empty", value: ""), Parameter(name: "q", value: #"x"y\z"#),
            ]
        )
        #expect(parsed.value(of: "Prev-Id") == "5")
        #expect(parsed.values(of: "filter") == ["a", "b; c"])
        #expect(parsed.value(of: "flag") == "")
        #expect(parsed.value(of: "missing") == nil)
    }

    @Test func firstValueIsNotQuoteAware() throws {
        // As in Pushpin: the value runs to the first `;`, so keep-alive data cannot contain one.
        let parsed = try #require(HeaderParameters(parsing: #""a;b"; format=raw"#))
        #expect(parsed.first.name == #""a"#)
        #expect(parsed.parameters.first?.name == #"b""#)
    }

    @Test func firstIsPair() throws {
        let parsed = try #require(HeaderParameters(parsing: #"name="Bob Smith"; x=1"#, firstIsPair: true))
        #expect(parsed.first == Parameter(name: "name", value: "Bob Smith"))
        #expect(parsed.parameters == [Parameter(name: "x", value: "1")])
        #expect(HeaderParameters(parsing: "", firstIsPair: true) == nil)
    }

    @Test(arguments: [#"a; x="open"#, #"a; x="esc\"#])
    func unterminatedQuotedValue(value: String) {
        #expect(HeaderParameters(parsing: value) == nil)
    }

    @Test func headerFieldHelpers() {
        #expect(HeaderField(name: "Grip-Hold", value: "").isGrip)
        #expect(HeaderField(name: "grip-", value: "").isGrip)
        #expect(!HeaderField(name: "Grip", value: "").isGrip)
        #expect(!HeaderField(name: "X-Grip-Hold", value: "").isGrip)
        #expect(HeaderField(name: "Content-Type", value: "").hasName("content-type"))
        #expect(HeaderField.isValidName("X-Custom_1!#$%&'*+.^`|~"))
        #expect(!HeaderField.isValidName(""))
        #expect(!HeaderField.isValidName("Bad Name"))
        #expect(!HeaderField.isValidName("caf\u{E9}"))
        #expect(HeaderField.isValidValue("a\tb caf\u{E9}"))
        #expect(!HeaderField.isValidValue("a\rb"))
        #expect(!HeaderField.isValidValue("a\u{7F}"))
        #expect(HeaderField.printable("a\r\n\u{7F}\u{1}b") == #"a\x0D\x0A\x7F\x01b"#)
    }

    @Test(arguments: [
        (200, "OK"), (404, "Not Found"), (418, "Undefined Reason"), (511, "Network Authentication Required"),
    ])
    func statusReasons(code: Int, phrase: String) {
        #expect(StatusReason.phrase(for: code) == phrase)
    }
}
