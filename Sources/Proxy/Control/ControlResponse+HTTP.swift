import NIOCore
import NIOHTTP1

/// How the control API puts its answers on the wire, and the refusals it decides from a request head.
extension ControlResponse {
    /// How long a refused request's unread body is drained after the response, so that closing the socket does
    /// not reset the connection before the client has read the answer.
    static let drainTime = TimeAmount.seconds(10)

    static let bodyTooLarge = ControlResponse.text(413, "Request body too large.")

    /// The response head: `Content-Length`, and `Connection: close` unless the connection stays open
    /// (`Connection: keep-alive` for an HTTP/1.0 client, whose default is to close).
    func head(version: HTTPVersion, keepAlive: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: self.contentType)
        for header in self.headers {
            headers.add(name: header.name, value: header.value)
        }
        headers.add(name: "Content-Length", value: String(self.body.count))
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if version == .http1_0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        let responseVersion = version == .http1_0 ? HTTPVersion.http1_0 : .http1_1
        return HTTPResponseHead(
            version: responseVersion,
            status: HTTPResponseStatus(statusCode: self.status),
            headers: headers
        )
    }

    /// Pushpin's framing rules: no chunked bodies, `Content-Length` required on requests that may carry a body,
    /// and a body over the limit refused before it is read.
    static func framingRefusal(_ head: HTTPRequestHead, maxBodySize: Int) -> ControlResponse? {
        let lengths = head.headers[canonicalForm: "content-length"]
        let bodyless: [HTTPMethod] = [.GET, .HEAD, .DELETE, .OPTIONS]
        if head.headers.contains(name: "transfer-encoding") || (lengths.isEmpty && !bodyless.contains(head.method)) {
            return .text(411, "Request requires Content-Length.")
        }
        guard let text = lengths.first else {
            return nil
        }
        guard lengths.allSatisfy({ $0 == text }), let length = Int(text), length >= 0 else {
            return .text(400, "Bad Content-Length.")
        }
        return length > maxBodySize ? Self.bodyTooLarge : nil
    }

    /// The 400 texts of Pushpin's control server for a request it cannot read.
    static func text(for error: HTTPParserError) -> String {
        switch error {
        case .headerOverflow:
            return "Request header too large."
        case .invalidContentLength, .unexpectedContentLength:
            return "Bad Content-Length."
        default:
            return "Failed to parse request header."
        }
    }
}
