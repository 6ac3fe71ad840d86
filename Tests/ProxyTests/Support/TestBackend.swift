import Foundation
import GRIP
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization
import Testing

/// A real HTTP/1.1 backend on 127.0.0.1 and an ephemeral port, answering by path:
///
/// - `/echo`: 200 with a text summary of the request (see ``EchoedRequest``).
/// - `/plain?status=N&body=TEXT&header=Name:Value...`: that status, body and headers.
/// - `/large?size=N`: N bytes of ``TestBackend/pattern(_:)`` with a Content-Length.
/// - `/gated?chunks=N`: a chunked response whose first chunk is sent at once and the rest only after
///   ``openGate()``.
/// - `/hang`: never answers.
/// - `/once`: 200 on a connection's first request; a later request on the same connection closes it unanswered
///   (a backend that closed an idle keep-alive connection).
final class TestBackend: Sendable {
    let port: Int
    private let channel: any Channel
    private let state = Mutex(State())

    private struct State {
        var requests: [EchoedRequest] = []
        var gateOpen = false
        var gateWaiters: [EventLoopPromise<Void>] = []
        var openConnections = 0
        var connectionsAccepted = 0
    }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    /// Starts the backend; with `tls`, it speaks HTTPS with the self-signed certificate of `localhost` and
    /// `127.0.0.1` in Fixtures/. It listens on `host` (IPv4 loopback unless told).
    static func start(tls: Bool = false, port: Int = 0, host: String = "127.0.0.1") async throws -> TestBackend {
        let box = Mutex<TestBackend?>(nil)
        let tlsContext = tls ? try Self.makeTLSContext() : nil
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [Self.webSocketUpgrader { request in box.withLock { $0 }?.record(request) }],
                            completionHandler: { _ in }
                        )
                    )
                    guard let backend = box.withLock({ $0 }) else {
                        // A connection that raced the bind (a client of an earlier test, on a reused port): refused.
                        throw ChannelError.ioOnClosedChannel
                    }
                    try channel.pipeline.syncOperations.addHandler(BackendHandler(backend: backend))
                }
            }
            .bind(host: host, port: port)
            .get()
        let backend = TestBackend(channel: channel, port: channel.localAddress!.port!)
        box.withLock { $0 = backend }
        return backend
    }

    /// Upgrades requests for `/wsecho` to a WebSocket served by ``EchoWebSocketHandler`` (recording the
    /// handshake as a request); other upgrade requests reach ``BackendHandler`` as plain requests.
    private static func webSocketUpgrader(
        record: @escaping @Sendable (EchoedRequest) -> Void
    ) -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 20,
            shouldUpgrade: { channel, head in
                guard head.uri.hasPrefix("/wsecho") else {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                record(
                    EchoedRequest(
                        method: head.method.rawValue,
                        uri: head.uri,
                        headers: head.headers.map { ($0.name, $0.value) },
                        body: []
                    )
                )
                var headers = HTTPHeaders()
                headers.add(name: "X-Backend", value: "echo")
                if head.uri.contains("grip=1") {
                    headers.add(name: "Sec-WebSocket-Extensions", value: "grip")
                }
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    pipeline.removeHandler(try pipeline.handler(type: BackendHandler.self), promise: nil)
                    try pipeline.addHandler(EchoWebSocketHandler(grip: head.uri.contains("grip=1")))
                }
            }
        )
    }

    private static func makeTLSContext() throws -> NIOSSLContext {
        func fixture(_ name: String) throws -> String {
            let url = try #require(Bundle.module.url(forResource: name, withExtension: "pem", subdirectory: "Fixtures"))
            return url.path
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(try fixture("backend-cert")).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: try fixture("backend-key"), format: .pem))
        )
        return try NIOSSLContext(configuration: configuration)
    }

    func stop() async {
        try? await self.channel.close()
    }

    /// Every request received so far, in order.
    var requests: [EchoedRequest] {
        self.state.withLock { $0.requests }
    }

    var openConnections: Int {
        self.state.withLock { $0.openConnections }
    }

    var connectionsAccepted: Int {
        self.state.withLock { $0.connectionsAccepted }
    }

    /// Lets every `/gated` response finish.
    func openGate() {
        let waiters = self.state.withLock { state in
            state.gateOpen = true
            defer { state.gateWaiters = [] }
            return state.gateWaiters
        }
        for waiter in waiters {
            waiter.succeed()
        }
    }

    fileprivate func gate(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let open = self.state.withLock { state in
            if !state.gateOpen {
                state.gateWaiters.append(promise)
            }
            return state.gateOpen
        }
        if open {
            promise.succeed()
        }
        return promise.futureResult
    }

    fileprivate func record(_ request: EchoedRequest) {
        self.state.withLock { $0.requests.append(request) }
    }

    fileprivate func connectionChanged(opened: Bool) {
        self.state.withLock { state in
            state.openConnections += opened ? 1 : -1
            if opened {
                state.connectionsAccepted += 1
            }
        }
    }

    /// The deterministic bytes `/large` sends: byte i is `i % 251`.
    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8($0 % 251) }
    }
}

/// What the backend saw of one request.
struct EchoedRequest: Sendable {
    var method: String
    var uri: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func values(_ name: String) -> [String] {
        self.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

private final class BackendHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let backend: TestBackend
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Requests answered on this connection.
    private var answered = 0

    init(backend: TestBackend) {
        self.backend = backend
    }

    func channelActive(context: ChannelHandlerContext) {
        self.backend.connectionChanged(opened: true)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.backend.connectionChanged(opened: false)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = []
        case .body(var buffer):
            self.body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head = self.head else { return }
            let request = EchoedRequest(
                method: head.method.rawValue,
                uri: head.uri,
                headers: head.headers.map { ($0.name, $0.value) },
                body: self.body
            )
            self.backend.record(request)
            self.answered += 1
            self.respond(to: request, context: context)
        }
    }

    private func respond(to request: EchoedRequest, context: ChannelHandlerContext) {
        let (path, query) = Self.split(request.uri)
        switch path {
        case "/echo":
            var text = "method=\(request.method)\nuri=\(request.uri)\nbody-length=\(request.body.count)\n"
            text += "body-checksum=\(Checksum.of(request.body))\n"
            self.send(status: .ok, headers: [("Content-Type", "text/plain")], body: Array(text.utf8), context: context)
        case "/plain":
            let statusText = query["status"]?.first ?? "200"
            let code = Int(statusText.prefix { $0.isNumber }) ?? 200
            let reason = statusText.drop { $0.isNumber }.drop { $0 == " " }
            let status: HTTPResponseStatus =
                reason.isEmpty
                ? HTTPResponseStatus(statusCode: code) : .custom(code: UInt(code), reasonPhrase: String(reason))
            let headers = (query["header"] ?? []).compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
            }
            self.send(
                status: status,
                headers: headers,
                body: Array((query["body"]?.first ?? "hello\n").utf8),
                context: context
            )
        case "/large":
            let size = Int(query["size"]?.first ?? "0") ?? 0
            self.send(status: .ok, headers: [], body: TestBackend.pattern(size), context: context)
        case "/gated":
            let chunks = Int(query["chunks"]?.first ?? "2") ?? 2
            var head = HTTPResponseHead(version: .http1_1, status: .ok)
            head.headers.add(name: "Transfer-Encoding", value: "chunked")
            context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(
                Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "chunk-0;")))),
                promise: nil
            )
            self.backend.gate(on: context.eventLoop).assumeIsolated().whenSuccess {
                for index in 1..<max(chunks, 1) {
                    context.write(
                        Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "chunk-\(index);")))),
                        promise: nil
                    )
                }
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        case "/held":
            // A plain answer (`body`) sent only once the gate opens: a request in flight for as long as a test needs.
            self.backend.gate(on: context.eventLoop).assumeIsolated().whenSuccess {
                let body = Array((query["body"]?.first ?? "held\n").utf8)
                self.send(status: .ok, headers: [("Content-Type", "text/plain")], body: body, context: context)
            }
        case "/hang":
            break
        case "/firsthangs":
            // Never answered the first time; answered as `/plain` from the second request for the same URI on.
            guard self.backend.requests.count(where: { $0.uri == request.uri }) > 1 else { break }
            var plain = request
            plain.uri = "/plain" + request.uri.dropFirst("/firsthangs".count)
            self.respond(to: plain, context: context)
        case "/once":
            if self.answered > 1 {
                context.close(promise: nil)
            } else {
                self.send(status: .ok, headers: [], body: Array("once".utf8), context: context)
            }
        case "/ws":
            var (status, headers, body) = Self.webSocketOverHTTP(request, query: query)
            if query["oneshot"] != nil {
                headers.append(("Connection", "close"))
            }
            self.send(status: status, headers: headers, body: body, context: context)
            if query["oneshot"] != nil {
                context.close(promise: nil)
            }
        default:
            self.send(status: .notFound, headers: [], body: Array("no such test path\n".utf8), context: context)
        }
    }

    /// A WebSocket-over-HTTP backend (grip-spec §7.2-7.3), driven by the query: `channel` (subscribed on
    /// `OPEN`, with `last-id` when given), `echo` (answers `TEXT x` with `m:echo:x`), `nogrip` (no GRIP
    /// extension), `refuse` (answers `OPEN` with 403), `garbage` (answers anything after `OPEN` with
    /// text/plain), `oneshot` (closes the connection after each answer), `chunk=N` (accepts at most N bytes of each
    /// request's message content, with `Content-Bytes-Accepted`). A client message `ctl:<json>` is
    /// answered with the control message `c:<json>`, `raw:<x>` with the unprefixed message `x`, `close:<code>`
    /// with a `CLOSE` of that code; a `CLOSE` is answered with the same `CLOSE`.
    private static func webSocketOverHTTP(
        _ request: EchoedRequest,
        query: [String: [String]]
    ) -> (HTTPResponseStatus, [(String, String)], [UInt8]) {
        guard let events = try? WebSocketEvent.decode(request.body) else {
            return (.badRequest, [], Array("bad events\n".utf8))
        }
        if query["refuse"] != nil {
            return (.forbidden, [("Content-Type", "text/plain"), ("X-Refused", "yes")], Array("go away\n".utf8))
        }
        if query["garbage"] != nil && !events.contains(.open) {
            return (.ok, [("Content-Type", "text/plain")], Array("not events".utf8))
        }
        var out: [WebSocketEvent] = []
        for event in events {
            switch event {
            case .open:
                out.append(.open)
                for channel in query["channel"] ?? [] {
                    var control = #"{"type":"subscribe","channel":"\#(channel)""#
                    if let lastID = query["last-id"]?.first {
                        control += #","last-id":"\#(lastID)""#
                    }
                    out.append(.text(Array(("c:" + control + "}").utf8)))
                }
            case .text(let content):
                let text = String(decoding: content, as: UTF8.self)
                if text.hasPrefix("ctl:") {
                    out.append(.text(Array(("c:" + text.dropFirst(4)).utf8)))
                } else if text.hasPrefix("raw:") {
                    out.append(.text(Array(text.dropFirst(4).utf8)))
                } else if text.hasPrefix("close:"), let code = UInt16(text.dropFirst(6)) {
                    out.append(.close(code: code, reason: Array("backend closed".utf8)))
                } else if query["echo"] != nil {
                    out.append(.text(Array("m:echo:".utf8) + content))
                }
            case .binary(let content) where query["echo"] != nil:
                out.append(.binary(Array("m:".utf8) + content))
            case .close:
                out.append(event)
            default:
                break
            }
        }
        var headers = [("Content-Type", WebSocketEvent.contentType), ("Set-Meta-User", "alice")]
        if query["nogrip"] == nil {
            headers.append(("Sec-WebSocket-Extensions", "grip"))
        }
        if let chunk = query["chunk"]?.first.flatMap({ Int($0) }), !events.contains(.open) {
            let offered = events.reduce(0) { $0 + $1.acceptedContentSize }
            headers.append(("Content-Bytes-Accepted", String(min(chunk, offered))))
        }
        return (.ok, headers, WebSocketEvent.encode(out))
    }

    private func send(
        status: HTTPResponseStatus,
        headers: [(String, String)],
        body: [UInt8],
        context: ChannelHandlerContext
    ) {
        var head = HTTPResponseHead(version: .http1_1, status: status)
        for (name, value) in headers {
            head.headers.add(name: name, value: value)
        }
        if !head.headers.contains(name: "content-length") && status != .noContent {
            head.headers.add(name: "Content-Length", value: String(body.count))
        }
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        var offset = 0
        while offset < body.count {
            let end = min(offset + 65536, body.count)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body[offset..<end])))), promise: nil)
            offset = end
        }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    private static func split(_ uri: String) -> (String, [String: [String]]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: [String]] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let value = parts.count > 1 ? String(parts[1]).removingPercentEncodingForTests() : ""
            query[String(parts[0]), default: []].append(value)
        }
        return (String(uri[..<mark]), query)
    }
}

/// FNV-1a, enough to tell whether a large body arrived intact.
enum Checksum {
    static func of(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }
}

extension String {
    /// `%XX` and `+` decoding for the test backend's query strings.
    fileprivate func removingPercentEncodingForTests() -> String {
        var bytes: [UInt8] = []
        var iterator = Array(self.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

@available(*, unavailable)
extension BackendHandler: Sendable {}

/// The test backend's WebSocket (`/wsecho`): echoes messages as `echo:<text>` (binary as it is), answers pings
/// with pongs and closes with the same close; a text `close:<code>` closes with that code, `drop` drops the
/// connection without a close. With `grip=1` in the path it enables the GRIP extension: echoes carry the `m:`
/// prefix, `ctl:<json>` is answered with the control message `c:<json>` and `raw:<x>` with `x` unprefixed.
private final class EchoWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let grip: Bool
    private var closeSent = false

    init(grip: Bool) {
        self.grip = grip
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        var payload = frame.unmaskedData
        switch frame.opcode {
        case .text:
            let text = String(buffer: payload)
            if text == "drop" {
                context.close(promise: nil)
            } else if text.hasPrefix("close:"), let code = UInt16(text.dropFirst(6)) {
                var close = ByteBuffer()
                close.writeInteger(code)
                close.writeString("backend says bye")
                self.closeSent = true
                context.writeAndFlush(
                    Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: close)),
                    promise: nil
                )
            } else if self.grip && text.hasPrefix("ctl:") {
                let control = WebSocketFrame(
                    fin: true,
                    opcode: .text,
                    data: ByteBuffer(string: "c:" + text.dropFirst(4))
                )
                context.writeAndFlush(Self.wrapOutboundOut(control), promise: nil)
            } else if self.grip && text.hasPrefix("raw:") {
                let raw = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: String(text.dropFirst(4))))
                context.writeAndFlush(Self.wrapOutboundOut(raw), promise: nil)
            } else {
                let prefix = self.grip ? "m:echo:" : "echo:"
                let echo = WebSocketFrame(fin: frame.fin, opcode: .text, data: ByteBuffer(string: prefix + text))
                context.writeAndFlush(Self.wrapOutboundOut(echo), promise: nil)
            }
        case .binary, .continuation:
            context.writeAndFlush(
                Self.wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: payload)),
                promise: nil
            )
        case .ping:
            context.writeAndFlush(
                Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: payload)),
                promise: nil
            )
        case .connectionClose:
            if self.closeSent {
                context.close(promise: nil)
                return
            }
            let answer = payload.readSlice(length: payload.readableBytes) ?? ByteBuffer()
            context.writeAndFlush(
                Self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: answer))
            )
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }
}
