import GRIP
import Testing

@Suite struct PublishFormatsStorageTests {
    static let samples: [PublishFormats] = [
        PublishFormats(),
        PublishFormats(httpStream: HTTPStreamFormat(content: Array("hello\n".utf8))),
        PublishFormats(httpStream: HTTPStreamFormat(content: Array(0...255))),
        PublishFormats(httpStream: HTTPStreamFormat(action: .close)),
        PublishFormats(httpStream: HTTPStreamFormat(action: .hint)),
        PublishFormats(httpStream: HTTPStreamFormat(content: [], contentFilters: ["build-id", "var-subst"])),
        PublishFormats(
            httpResponse: HTTPResponseFormat(
                code: 201,
                reason: "Made",
                headers: [
                    HeaderField(name: "X-B", value: "2"), HeaderField(name: "X-A", value: "1"),
                    HeaderField(name: "X-B", value: "3"),
                ],
                body: .bytes(Array("published body\n".utf8)),
                contentFilters: []
            ),
            httpStream: HTTPStreamFormat(content: Array("s".utf8)),
            wsMessage: WSMessageFormat(type: .binary, content: [0xFF, 0x00])
        ),
        PublishFormats(httpResponse: HTTPResponseFormat(body: .bytes([0xC3, 0x28]))),
        PublishFormats(httpResponse: HTTPResponseFormat(action: .hint)),
        PublishFormats(httpResponse: HTTPResponseFormat(action: .close)),
        PublishFormats(
            httpResponse: HTTPResponseFormat(
                body: .patch([
                    .object(["op": .string("replace"), "path": .string("/a"), "value": .int(2)]),
                    .object(["op": .string("add"), "path": .string("/b/-"), "value": .double(3.5)]),
                    .object([
                        "op": .string("add"), "path": .string("/c"),
                        "value": .array([.null, .bool(true), .string("\"q\"\n")]),
                    ]),
                ])
            )
        ),
        PublishFormats(wsMessage: WSMessageFormat(type: .text, content: Array("caf\u{E9} \u{1F600}".utf8))),
        PublishFormats(wsMessage: WSMessageFormat(type: .text, content: [0x80])),
        PublishFormats(wsMessage: WSMessageFormat(type: .ping)),
        PublishFormats(wsMessage: WSMessageFormat(type: .pong, content: [1])),
        PublishFormats(wsMessage: WSMessageFormat(action: .close, closeCode: 4001, closeReason: "pub close")),
        PublishFormats(wsMessage: WSMessageFormat(action: .close)),
        PublishFormats(wsMessage: WSMessageFormat(action: .hint)),
        PublishFormats(wsMessage: WSMessageFormat(action: .refresh)),
    ]

    @Test(arguments: Self.samples)
    func roundTrip(formats: PublishFormats) throws {
        let stored = formats.storedJSON()
        let decoded = try PublishFormats(storedJSON: stored)
        #expect(decoded == formats)
        #expect(decoded.storedJSON() == stored)
    }

    @Test func parsedItemsRoundTrip() throws {
        let items = try PublishRequest.parse(
            body: Array(
                (#"{"items": [{"channel": "a", "formats": {"http-response": {"code": 201, "headers": {"X-Pub": "yes"},"#
                    + #" "body-bin": "AAEC"}, "http-stream": {"content": "x"}, "ws-message": {"content-bin": "AAEC"}}},"#
                    + #" {"channel": "b", "http-stream": {"action": "close", "content": "ignored"}}]}"#).utf8
            )
        )
        for item in items {
            #expect(try PublishFormats(storedJSON: item.formats.storedJSON()) == item.formats)
        }
    }

    @Test func canonicalBytes() {
        let formats = PublishFormats(
            httpResponse: HTTPResponseFormat(
                code: 201,
                headers: [HeaderField(name: "X", value: "1")],
                body: .bytes([0xFF, 0xFE])
            ),
            httpStream: HTTPStreamFormat(content: Array("hi\n".utf8)),
            wsMessage: WSMessageFormat(action: .close, closeCode: 1000)
        )
        #expect(
            String(decoding: formats.storedJSON(), as: UTF8.self)
                == #"{"http-response":{"action":"send","body-bin":"//4=","code":201,"headers":[["X","1"]]},"#
                + #""http-stream":{"action":"send","content":"hi\n"},"ws-message":{"action":"close","code":1000}}"#
        )
    }

    @Test func storedJSONErrors() {
        #expect(throws: PublishError.self) { try PublishFormats(storedJSON: Array("nope".utf8)) }
        #expect(throws: PublishError.self) { try PublishFormats(storedJSON: Array("[]".utf8)) }
        #expect(throws: PublishError.self) { try PublishFormats(storedJSON: Array(#"{"http-stream": {}}"#.utf8)) }
    }
}
