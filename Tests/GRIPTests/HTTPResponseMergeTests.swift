import GRIP
import Testing

@Suite struct HTTPResponseMergeTests {
    static func fields(_ pairs: [(String, String)]) -> [HeaderField] {
        pairs.map(HeaderField.init)
    }

    @Test func specExampleInheritsReplacesAndAdds() {
        // grip-spec §3.4 step 4 and Appendix A.1.
        let original = Self.fields([("Content-Type", "text/plain"), ("X-Foo", "bar"), ("X-Keep", "orig")])
        let format = HTTPResponseFormat(
            code: 201,
            reason: "Made",
            headers: Self.fields([("X-Keep", "pub"), ("X-Pub", "yes")]),
            body: .bytes(Array("published body\n".utf8))
        )
        #expect(
            format.mergedHeaders(over: original)
                == Self.fields([("Content-Type", "text/plain"), ("X-Foo", "bar"), ("X-Keep", "pub"), ("X-Pub", "yes")])
        )
    }

    @Test func sameNameInAnyCaseIsReplacedWithAllItsOccurrences() {
        let original = Self.fields([
            ("content-type", "a"), ("Set-Cookie", "1"), ("set-cookie", "2"), ("X-Orig", "kept"),
        ])
        let format = HTTPResponseFormat(headers: Self.fields([("Content-Type", "text/x-pub"), ("Set-Cookie", "3")]))
        #expect(
            format.mergedHeaders(over: original)
                == Self.fields([("X-Orig", "kept"), ("Content-Type", "text/x-pub"), ("Set-Cookie", "3")])
        )
    }

    @Test func gripHeadersAreDroppedAndExposeHeadersHides() {
        let original = Self.fields([("X-A", "1"), ("X-B", "2"), ("Grip-Old", "x")])
        let format = HTTPResponseFormat(
            headers: Self.fields([("Grip-Expose-Headers", "x-b, X-C"), ("X-C", "3"), ("X-D", "4"), ("Grip-Foo", "y")])
        )
        #expect(format.mergedHeaders(over: original) == Self.fields([("X-A", "1"), ("X-D", "4")]))
    }
}
