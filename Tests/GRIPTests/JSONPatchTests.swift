import GRIP
import Testing

@Suite struct JSONPatchTests {
    static func ops(_ json: String) throws -> [JSONValue] {
        guard case .array(let operations)? = JSONValue.parse(Array(json.utf8)) else {
            throw JSONPatchError("test operations are not a JSON array")
        }
        return operations
    }

    static func patch(_ body: String, _ operations: String) throws -> String {
        String(decoding: try JSONPatch.apply(try Self.ops(operations), toBody: Array(body.utf8)), as: UTF8.self)
    }

    @Test func specExample() throws {
        // grip-spec §3.4 step 5 / conformance seed 29.
        #expect(
            try Self.patch(
                "{\"a\": 1, \"b\": [1]}\n",
                #"[{"op": "replace", "path": "/a", "value": 2}, {"op": "add", "path": "/b/-", "value": 3}]"#
            ) == "{\"a\":2,\"b\":[1,3]}\n"
        )
    }

    @Test(
        arguments: [
            (#"{"a": 1}"#, #"[{"op": "add", "path": "/b", "value": {"c": null}}]"#, #"{"a":1,"b":{"c":null}}"#),
            (#"{"a": [1, 2]}"#, #"[{"op": "add", "path": "/a/0", "value": 0}]"#, #"{"a":[0,1,2]}"#),
            (#"{"a": [1, 2]}"#, #"[{"op": "add", "path": "/a/2", "value": 3}]"#, #"{"a":[1,2,3]}"#),
            (#"{"a": 1, "b": 2}"#, #"[{"op": "remove", "path": "/a"}]"#, #"{"b":2}"#),
            (#"[1, 2, 3]"#, #"[{"op": "remove", "path": "/1"}]"#, #"[1,3]"#),
            (#"{"a": {"b": 1}}"#, #"[{"op": "replace", "path": "/a/b", "value": "x"}]"#, #"{"a":{"b":"x"}}"#),
            (#"{"a": 1}"#, #"[{"op": "replace", "path": "", "value": [true]}]"#, #"[true]"#),
            (#"{"a": {"b": 1}, "c": []}"#, #"[{"op": "move", "from": "/a/b", "path": "/c/-"}]"#, #"{"a":{},"c":[1]}"#),
            (#"{"a": 1}"#, #"[{"op": "move", "from": "/a", "path": "/a"}]"#, #"{"a":1}"#),
            (#"{"a": [1]}"#, #"[{"op": "copy", "from": "/a", "path": "/b"}]"#, #"{"a":[1],"b":[1]}"#),
            (
                #"{"a": 1}"#, #"[{"op": "test", "path": "/a", "value": 1.0}, {"op": "add", "path": "/t", "value": 1}]"#,
                #"{"a":1,"t":1}"#
            ),
            (
                #"{"a/b": 1, "m~n": 2}"#,
                #"[{"op": "remove", "path": "/a~1b"}, {"op": "replace", "path": "/m~0n", "value": 3}]"#, #"{"m~n":3}"#
            ),
            (#"{"": 1}"#, #"[{"op": "replace", "path": "/", "value": 2}]"#, #"{"":2}"#),
        ]
    )
    func operations(body: String, operations: String, expected: String) throws {
        #expect(try Self.patch(body, operations) == expected)
    }

    @Test func trailingLineEndingsAreKept() throws {
        let ops = #"[{"op": "add", "path": "/x", "value": 1}]"#
        #expect(try Self.patch("{}\r\n", ops) == "{\"x\":1}\r\n")
        #expect(try Self.patch("{}", ops) == "{\"x\":1}")
    }

    @Test(
        arguments: [
            (#"{"a": 1}"#, #"[{"op": "test", "path": "/a", "value": 2}]"#, "operation 0: test failed"),
            (#"{"a": 1}"#, #"[{"op": "remove", "path": "/b"}]"#, "operation 0: no member 'b'"),
            (#"{"a": 1}"#, #"[{"op": "replace", "path": "/b", "value": 1}]"#, "operation 0: no member 'b'"),
            (#"{"a": 1}"#, #"[{"op": "add", "path": "/x/y", "value": 1}]"#, "operation 0: no member 'x'"),
            (#"[1]"#, #"[{"op": "add", "path": "/2", "value": 1}]"#, "operation 0: bad array index '2'"),
            (#"[1]"#, #"[{"op": "remove", "path": "/-"}]"#, "operation 0: bad array index '-'"),
            (#"[1, 2]"#, #"[{"op": "remove", "path": "/01"}]"#, "operation 0: bad array index '01'"),
            (#"{"a": 1}"#, #"[{"op": "add", "path": "/a/b", "value": 1}]"#, "operation 0: 'b' is not in a container"),
            (#"{"a": 1}"#, #"[{"op": "remove", "path": ""}]"#, "operation 0: cannot remove the whole document"),
            (
                #"{"a": {}}"#, #"[{"op": "move", "from": "/a", "path": "/a/b"}]"#,
                "operation 0: 'from' is a prefix of 'path'"
            ),
            (#"{"a": 1}"#, #"[{"op": "jump", "path": "/a"}]"#, "operation 0: unknown op 'jump'"),
            (#"{"a": 1}"#, #"[{"path": "/a"}]"#, "operation 0: no 'op' string"),
            (#"{"a": 1}"#, #"[{"op": "add", "path": "a", "value": 1}]"#, "operation 0: 'path' is not a JSON pointer"),
            (#"{"a": 1}"#, #"[{"op": "add", "path": "/b"}]"#, "operation 0: no 'value'"),
            (#"{"a": 1}"#, #"[{"op": "copy", "path": "/b"}]"#, "operation 0: no 'from' string"),
            (#"{"a": 1}"#, #"[{"op": "add", "path": "/b", "value": 1}, 5]"#, "operation 1: not an object"),
            ("not json", "[]", "the response body is not JSON"),
            ("\"text\"", "[]", "the response body is not a JSON object or array"),
        ]
    )
    func failures(body: String, operations: String, message: String) throws {
        let ops = try Self.ops(operations)
        #expect(throws: JSONPatchError(message)) {
            try JSONPatch.apply(ops, toBody: Array(body.utf8))
        }
    }

    @Test func errorDescription() {
        #expect(JSONPatchError("operation 0: test failed").description == "body-patch failed: operation 0: test failed")
    }
}
