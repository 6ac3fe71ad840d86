import GRIP
import Testing

@Suite struct XForwardedForRuleTests {
    @Test func parsing() throws {
        #expect(try XForwardedForRule(parsing: "") == XForwardedForRule())
        #expect(try XForwardedForRule(parsing: "append") == XForwardedForRule(truncate: nil, append: true))
        #expect(try XForwardedForRule(parsing: "truncate:0,append") == XForwardedForRule(truncate: 0, append: true))
        #expect(try XForwardedForRule(parsing: " truncate:3 ") == XForwardedForRule(truncate: 3, append: false))
        #expect(try XForwardedForRule(parsing: "").isEmpty)
        #expect(try !XForwardedForRule(parsing: "append").isEmpty)
    }

    @Test(arguments: ["truncate", "truncate:x", "truncate:-1", "prepend"])
    func rejects(text: String) {
        #expect(throws: ConfigError.self) {
            try XForwardedForRule(parsing: text)
        }
    }

    @Test func truncateZeroAppendReplacesWithClient() throws {
        let rule = try XForwardedForRule(parsing: "truncate:0,append")
        #expect(rule.apply(existing: ["9.9.9.9"], clientAddress: "127.0.0.1") == "127.0.0.1")
    }

    @Test func appendAddsClient() throws {
        let rule = try XForwardedForRule(parsing: "append")
        #expect(rule.apply(existing: ["9.9.9.9"], clientAddress: "127.0.0.1") == "9.9.9.9, 127.0.0.1")
        #expect(rule.apply(existing: [], clientAddress: "127.0.0.1") == "127.0.0.1")
    }

    @Test func emptyRuleLeavesHeaderUntouched() {
        let rule = XForwardedForRule()
        #expect(rule.isEmpty)
        #expect(rule.apply(existing: ["9.9.9.9"], clientAddress: "127.0.0.1") == "9.9.9.9")
        #expect(rule.apply(existing: [], clientAddress: "127.0.0.1") == nil)
    }

    @Test func collectsSplitsAndTruncates() {
        let rule = XForwardedForRule(truncate: 2, append: true)
        let result = rule.apply(existing: ["1.1.1.1, 2.2.2.2", " 3.3.3.3 "], clientAddress: "10.0.0.1")
        #expect(result == "2.2.2.2, 3.3.3.3, 10.0.0.1")
        #expect(XForwardedForRule(truncate: 0).apply(existing: ["1.1.1.1"], clientAddress: "x") == nil)
    }
}
