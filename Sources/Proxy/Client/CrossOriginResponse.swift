import GRIP
import NIOCore
import NIOHTTP1

/// What auto cross-origin (grip-spec §2.9) does to the response of one client request, whichever way it is
/// produced (relayed, held, streamed or the proxy's own): CORS headers are added, or the whole response is
/// wrapped in a JSON-P callback. The client connection applies it as it writes the response.
final class CrossOriginResponse {
    private enum Kind {
        case cors(requestHeaders: [HeaderField])
        case jsonp(JSONPResponseEncoder)
    }

    private var kind: Kind
    private let requestVersion: HTTPVersion

    static func cors(request: HTTPRequestHead) -> CrossOriginResponse {
        CrossOriginResponse(
            kind: .cors(requestHeaders: request.headers.map { HeaderField(name: $0.name, value: $0.value) }),
            version: request.version
        )
    }

    static func jsonp(_ request: JSONPRequest, version: HTTPVersion) -> CrossOriginResponse {
        CrossOriginResponse(
            kind: .jsonp(JSONPResponseEncoder(callback: request.callback, mode: request.mode)),
            version: version
        )
    }

    private init(kind: Kind, version: HTTPVersion) {
        self.kind = kind
        self.requestVersion = version
    }

    /// Whether the response must end with the connection (a JSON-P body has no length, and HTTP/1.0 has no
    /// chunked encoding).
    var endsConnection: Bool {
        if case .jsonp = self.kind {
            return self.requestVersion.minor == 0
        }
        return false
    }

    /// The head to send instead of `head`, and for JSON-P the opening of the call.
    func head(_ head: HTTPResponseHead) -> (HTTPResponseHead, ByteBuffer?) {
        var fields = head.headers.map { HeaderField(name: $0.name, value: $0.value) }
        switch self.kind {
        case .cors(let requestHeaders):
            CrossOrigin.apply(requestHeaders: requestHeaders, to: &fields)
            return (HTTPResponseHead(version: head.version, status: head.status, headers: Self.headers(fields)), nil)
        case .jsonp(let encoder):
            let inner = fields.filter { !$0.hasName("Connection") }
            let (outer, prefix) = encoder.start(
                code: Int(head.status.code),
                reason: head.status.reasonPhrase,
                headers: inner
            )
            var headers = Self.headers(outer)
            if self.endsConnection
                || head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "close" })
            {
                headers.add(name: "Connection", value: "close")
            }
            return (HTTPResponseHead(version: head.version, status: .ok, headers: headers), ByteBuffer(bytes: prefix))
        }
    }

    /// The body bytes to send instead of `buffer`.
    func body(_ buffer: ByteBuffer) -> ByteBuffer {
        guard case .jsonp(var encoder) = self.kind else { return buffer }
        let wrapped = encoder.body(Array(buffer.readableBytesView))
        self.kind = .jsonp(encoder)
        return ByteBuffer(bytes: wrapped)
    }

    /// What to send before the response ends (JSON-P: the call's closing).
    func end() -> ByteBuffer? {
        guard case .jsonp(let encoder) = self.kind else { return nil }
        return ByteBuffer(bytes: encoder.end())
    }

    private static func headers(_ fields: [HeaderField]) -> HTTPHeaders {
        HTTPHeaders(fields.map { ($0.name, $0.value) })
    }
}
