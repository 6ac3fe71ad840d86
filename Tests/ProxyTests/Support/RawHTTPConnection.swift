import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import P8TestSupport
import Synchronization

/// A byte-exact HTTP/1.1 client connection for tests: sends raw bytes, parses responses itself, and can
/// read a response part by part, so tests see exactly what the proxy put on the wire and when.
final class RawHTTPConnection: Sendable {
    /// What a wait found instead: the connection closed first, or the time ran out, with what had arrived.
    struct Timeout: Error, CustomStringConvertible {
        var waitingFor: String
        var closed = false
        var unread: [UInt8] = []
        var description: String {
            let what = self.closed ? "the connection closed while waiting for" : "timed out waiting for"
            return "\(what) \(self.waitingFor) (\(self.unread.count) bytes unread: "
                + "\(String(decoding: self.unread.prefix(200), as: UTF8.self).debugDescription))"
        }
    }

    private let channel: any Channel
    private let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// Connects to 127.0.0.1:`port`. Without `reading`, nothing is read from the socket (a client that stops
    /// reading, with a small receive buffer) until ``resumeReading()``.
    ///
    /// With `tls`, the connection speaks TLS (any server certificate accepted; SNI `serverName` when given).
    static func connect(
        port: Int,
        reading: Bool = true,
        tls: (context: NIOSSLContext, serverName: String?)? = nil
    ) async throws -> RawHTTPConnection {
        let inbox = Inbox()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if !reading {
            bootstrap = bootstrap.channelOption(.autoRead, value: false)
                .channelOption(.socketOption(.so_rcvbuf), value: 4096)
        }
        let channel =
            try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(InboxHandler(inbox: inbox))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return RawHTTPConnection(channel: channel, inbox: inbox)
    }

    /// The certificate the server presented (TLS connections, once a response arrived).
    func peerCertificate() async throws -> NIOSSLCertificate? {
        try await self.channel.nioSSL_peerCertificate().get()
    }

    func send(_ text: String) async throws {
        try await self.send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Starts reading a connection made without `reading`.
    func resumeReading() async throws {
        try await self.channel.setOption(.autoRead, value: true).get()
    }

    func close() async {
        try? await self.channel.close()
    }

    /// Shuts down the sending side only (a TCP half-close), on a connection that sent nothing.
    func closeOutput() async throws {
        try await self.channel.close(mode: .output)
    }

    /// Sends `text`, then shuts down the sending side only (a TCP half-close), as some clients do once the
    /// request is sent. Both are queued in one turn of the event loop: whatever the server answers in between
    /// (an answer and a close, on a server that closes after every response) cannot close the channel before
    /// the half-close.
    func sendThenCloseOutput(_ text: String) async throws {
        let channel = self.channel
        let bytes = ByteBuffer(string: text)
        let (written, halfClosed) = try await channel.eventLoop.submit {
            (channel.writeAndFlush(bytes), channel.close(mode: .output))
        }.get()
        try await written.get()
        try await halfClosed.get()
    }

    /// Waits until the peer closed the connection.
    func waitForClose(timeout: Duration = defaultWait) async throws {
        try await self.inbox.wait(timeout: timeout, for: "the connection to close") { $0.closed ? () : nil }
    }

    /// Reads one whole response. `bodyless` is for responses to HEAD.
    func readResponse(bodyless: Bool = false, timeout: Duration = defaultWait) async throws -> RawResponse {
        let head = try await self.readHead(timeout: timeout)
        if bodyless || head.status == 204 || head.status == 304 || (100..<200).contains(head.status) {
            return head
        }
        var response = head
        if let length = head.header("content-length").flatMap({ Int($0) }) {
            response.body = try await self.readBytes(length, timeout: timeout)
        } else if head.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                let sizeLine = try await self.readLine(timeout: timeout)
                let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) ?? 0
                if size == 0 {
                    _ = try await self.readLine(timeout: timeout)
                    break
                }
                response.body += try await self.readBytes(size, timeout: timeout)
                _ = try await self.readLine(timeout: timeout)
            }
        } else {
            try await self.waitForClose(timeout: timeout)
            response.body = self.inbox.takeAll()
        }
        return response
    }

    /// Reads a status line and headers.
    func readHead(timeout: Duration = defaultWait) async throws -> RawResponse {
        let headBytes = try await self.inbox.wait(timeout: timeout, for: "a response head") { state in
            state.take(through: Array("\r\n\r\n".utf8))
        }
        let lines = String(decoding: headBytes, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        var response = RawResponse(
            status: Int(statusParts[1]) ?? 0,
            reason: statusParts.count > 2 ? String(statusParts[2]) : ""
        )
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            response.headers.append(
                (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
            )
        }
        return response
    }

    /// Reads exactly `count` bytes.
    func readBytes(_ count: Int, timeout: Duration = defaultWait) async throws -> [UInt8] {
        try await self.inbox.wait(timeout: timeout, for: "\(count) bytes") { state in
            state.take(count: count)
        }
    }

    /// Reads chunks of a chunked body until what was read contains `marker` or has at least `bytes` bytes (returns
    /// the body so far), or the body ends (returns it whole, with `ended`).
    func readChunks(
        until marker: String? = nil,
        bytes: Int? = nil,
        timeout: Duration = defaultWait
    ) async throws -> (body: [UInt8], ended: Bool) {
        var body: [UInt8] = []
        let needle = marker.map { Array($0.utf8) }
        while true {
            if let needle, body.count >= needle.count, Self.contains(body, needle) {
                return (body, false)
            }
            if let bytes, body.count >= bytes {
                return (body, false)
            }
            let sizeLine = try await self.readLine(timeout: timeout)
            let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) ?? 0
            if size == 0 {
                _ = try await self.readLine(timeout: timeout)
                return (body, true)
            }
            body += try await self.readBytes(size, timeout: timeout)
            _ = try await self.readLine(timeout: timeout)
        }
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        return haystack.indices.contains { start in
            start + needle.count <= haystack.count && haystack[start..<start + needle.count].elementsEqual(needle)
        }
    }

    private func readLine(timeout: Duration) async throws -> String {
        let bytes = try await self.inbox.wait(timeout: timeout, for: "a line") { state in
            state.take(through: Array("\r\n".utf8))
        }
        return String(decoding: bytes.dropLast(2), as: UTF8.self)
    }
}

struct RawResponse: Sendable {
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []

    func header(_ name: String) -> String? {
        self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func headers(_ name: String) -> [String] {
        self.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var text: String { String(decoding: self.body, as: UTF8.self) }
}

private final class Inbox: Sendable {
    struct State {
        var bytes: [UInt8] = []
        var closed = false

        mutating func take(count: Int) -> [UInt8]? {
            guard self.bytes.count >= count else { return nil }
            defer { self.bytes.removeFirst(count) }
            return Array(self.bytes.prefix(count))
        }

        mutating func take(through marker: [UInt8]) -> [UInt8]? {
            guard self.bytes.count >= marker.count else { return nil }
            for start in 0...(self.bytes.count - marker.count)
            where self.bytes[start..<(start + marker.count)].elementsEqual(marker) {
                let end = start + marker.count
                defer { self.bytes.removeFirst(end) }
                return Array(self.bytes.prefix(end))
            }
            return nil
        }
    }

    private let state = Mutex(State())

    func append(_ bytes: [UInt8]) {
        self.state.withLock { $0.bytes += bytes }
    }

    func markClosed() {
        self.state.withLock { $0.closed = true }
    }

    func takeAll() -> [UInt8] {
        self.state.withLock { state in
            defer { state.bytes = [] }
            return state.bytes
        }
    }

    func wait<T>(timeout: Duration, for what: String, _ attempt: (inout State) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            // One look at the bytes and the close together: bytes that arrived just before the close are read,
            // not taken for a connection that closed with nothing.
            let expired = ContinuousClock.now > deadline
            let outcome: Result<T, RawHTTPConnection.Timeout>? = self.state.withLock { state in
                if let result = attempt(&state) {
                    return .success(result)
                }
                guard state.closed || expired else { return nil }
                return .failure(RawHTTPConnection.Timeout(waitingFor: what, closed: state.closed, unread: state.bytes))
            }
            if let outcome {
                return try outcome.get()
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

private final class InboxHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let inbox: Inbox

    init(inbox: Inbox) {
        self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        self.inbox.append(buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.inbox.markClosed()
    }
}

@available(*, unavailable)
extension InboxHandler: Sendable {}
