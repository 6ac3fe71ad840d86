import NIOCore
import NIOHTTP1

/// Writes the responses of a control API connection.
struct ControlExchange {
    /// How long a refused request's unread body is drained after the response, so that closing the socket does
    /// not reset the connection before the client has read the answer.
    static let drainTime = TimeAmount.seconds(10)

    let channel: any Channel
    let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    /// Writes `response` with `Content-Length`, and `Connection: close` unless the connection stays open
    /// (`Connection: keep-alive` for an HTTP/1.0 client, whose default is to close).
    func send(_ response: ControlResponse, version: HTTPVersion, keepAlive: Bool) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        for header in response.headers {
            headers.add(name: header.name, value: header.value)
        }
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if version == .http1_0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        let responseVersion = version == .http1_0 ? HTTPVersion.http1_0 : .http1_1
        try await self.outbound.write(
            .head(
                HTTPResponseHead(
                    version: responseVersion,
                    status: HTTPResponseStatus(statusCode: response.status),
                    headers: headers
                )
            )
        )
        try await self.outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
        try await self.outbound.write(.end(nil))
    }

    /// Answers before the request body was read: writes the response, half-closes, then reads and discards what
    /// the client still sends until it closes, at most ``drainTime``.
    func sendEarly(
        _ response: ControlResponse,
        version: HTTPVersion,
        draining parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator
    ) async throws {
        try await self.send(response, version: version, keepAlive: false)
        self.outbound.finish()
        let channel = self.channel
        _ = channel.eventLoop.scheduleTask(in: Self.drainTime) {
            channel.close(promise: nil)
        }
        while (try? await parts.next(isolation: #isolation)) != nil {}
    }
}
