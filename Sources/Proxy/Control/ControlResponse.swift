import GRIP

/// A response of the HTTP control API, before it is put on the wire: status, extra headers and body. Every
/// response is sent with `Content-Length` and `Connection: close`, as Pushpin's control server does.
struct ControlResponse: Sendable {
    var status: Int
    var contentType: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    init(status: Int, contentType: String, headers: [(name: String, value: String)] = [], body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    /// `text` and a newline as `text/plain`.
    static func text(_ status: Int, _ text: String, headers: [(name: String, value: String)] = []) -> Self {
        Self(status: status, contentType: "text/plain", headers: headers, body: Array("\(text)\n".utf8))
    }

    /// A JSON document and a newline as `application/json`.
    static func json(_ status: Int, _ value: JSONValue, headers: [(name: String, value: String)] = []) -> Self {
        Self(status: status, contentType: "application/json", headers: headers, body: value.encoded() + [0x0A])
    }

    /// A success message in the negotiated format: `Published\n` or `{"message":"Published"}\n`.
    static func message(_ text: String, json: Bool) -> Self {
        json ? .json(200, .object(["message": .string(text)])) : .text(200, text)
    }
}
