import Foundation
import NIOSSL
import P8TestSupport

/// A minimal WebSocket client for tests (RFC 6455), on a ``RawHTTPConnection``: opens with a real handshake,
/// sends masked frames, and reads frames exactly as the proxy wrote them.
struct RawWebSocket: Sendable {
    /// One frame as received.
    struct Frame: Sendable, Equatable {
        var fin: Bool
        var opcode: UInt8
        var payload: [UInt8]

        var text: String { String(decoding: self.payload, as: UTF8.self) }

        /// A close frame's code.
        var closeCode: UInt16? {
            self.payload.count >= 2 ? UInt16(self.payload[0]) << 8 | UInt16(self.payload[1]) : nil
        }

        /// A close frame's reason.
        var closeReason: String { String(decoding: self.payload.dropFirst(2), as: UTF8.self) }
    }

    static let text: UInt8 = 1
    static let binary: UInt8 = 2
    static let close: UInt8 = 8
    static let ping: UInt8 = 9
    static let pong: UInt8 = 10

    let connection: RawHTTPConnection
    /// The handshake's response (status 101 when upgraded).
    let response: RawResponse

    /// Connects and sends the opening handshake; reads the response head (and, when refused, the body). Without
    /// `reading`, reads nothing at all (a client that never reads; its `response` is then empty).
    static func connect(
        port: Int,
        path: String,
        headers: [(String, String)] = [],
        reading: Bool = true,
        tls: (context: NIOSSLContext, serverName: String?)? = nil,
        textBeforeResponse: String? = nil
    ) async throws -> RawWebSocket {
        let connection = try await RawHTTPConnection.connect(port: port, reading: reading, tls: tls)
        var request = "GET \(path) HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers {
            request += "\(name): \(value)\r\n"
        }
        var bytes = Array((request + "\r\n").utf8)
        if let text = textBeforeResponse {
            // A client that does not wait for the 101: the frame goes in the same write as the request.
            bytes += Self.maskedFrame(opcode: Self.text, Array(text.utf8), fin: true)
        }
        try await connection.send(bytes)
        guard reading else {
            return RawWebSocket(connection: connection, response: RawResponse(status: 0, reason: ""))
        }
        var response = try await connection.readHead()
        if response.status != 101, let length = response.header("Content-Length").flatMap(Int.init) {
            response.body = try await connection.readBytes(length)
        }
        return RawWebSocket(connection: connection, response: response)
    }

    /// Sends one frame, masked as a client must; `fin: false` starts or continues a fragmented message.
    func send(opcode: UInt8, _ payload: [UInt8], fin: Bool = true) async throws {
        try await self.connection.send(Self.maskedFrame(opcode: opcode, payload, fin: fin))
    }

    /// One frame, masked as a client must.
    static func maskedFrame(opcode: UInt8, _ payload: [UInt8], fin: Bool) -> [UInt8] {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xffff {
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(payload.count) >> (UInt64($0) * 8)) & 0xff) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        return frame
    }

    func send(text: String) async throws {
        try await self.send(opcode: Self.text, Array(text.utf8))
    }

    /// Sends a close frame with a code and reason.
    func sendClose(code: UInt16, reason: String) async throws {
        try await self.send(opcode: Self.close, [UInt8(code >> 8), UInt8(code & 0xff)] + Array(reason.utf8))
    }

    /// Reads the next frame.
    func read(timeout: Duration = defaultWait) async throws -> Frame {
        let header = try await self.connection.readBytes(2, timeout: timeout)
        var length = Int(header[1] & 0x7f)
        if length == 126 {
            let extended = try await self.connection.readBytes(2, timeout: timeout)
            length = Int(extended[0]) << 8 | Int(extended[1])
        } else if length == 127 {
            let extended = try await self.connection.readBytes(8, timeout: timeout)
            length = extended.reduce(0) { $0 << 8 | Int($1) }
        }
        let payload = length == 0 ? [] : try await self.connection.readBytes(length, timeout: timeout)
        return Frame(fin: header[0] & 0x80 != 0, opcode: header[0] & 0x0f, payload: payload)
    }

    /// Reads frames until a text or binary one (skipping pings and pongs).
    func readMessage(timeout: Duration = defaultWait) async throws -> Frame {
        while true {
            let frame = try await self.read(timeout: timeout)
            if frame.opcode != Self.ping && frame.opcode != Self.pong {
                return frame
            }
        }
    }

    func close() async {
        await self.connection.close()
    }
}
