import Foundation
import GRIP
import NIOCore
import NIOHTTP1
import Testing

@testable import Proxy

/// ``ProxyExchangeStateMachine``, event by event and without sockets: the request body while connecting, relayed
/// and GRIP responses, backend failures at each point, timeouts.
@Suite("A proxied exchange's decisions")
struct ProxyExchangeStateMachineTests {
    private static func request(_ version: HTTPVersion = .http1_1, method: HTTPMethod = .POST) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: "/a", headers: ["Host": "example.com"])
    }

    private static func response(
        _ status: HTTPResponseStatus = .ok,
        _ headers: HTTPHeaders = ["Content-Length": "5"]
    ) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: headers)
    }

    @Test("body read while connecting is queued, then sent after the head; later body goes straight on")
    func bodyWhileConnecting() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        let queued = machine.clientBody(ByteBuffer(string: "abc"))
        #expect(queued == .queued(pauseClient: false))
        let sent = machine.backendConnected()
        #expect(sent.body == [ByteBuffer(string: "abc")])
        #expect(!sent.end)
        let forwarded = machine.clientBody(ByteBuffer(string: "de"))
        #expect(forwarded == .forward(ByteBuffer(string: "de")))
        let end = machine.clientEnd()
        #expect(end)
        #expect(machine.requestBodyBytes == 5)
    }

    @Test("too much body while connecting pauses the client")
    func pendingBodyPauses() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        let big = ByteBuffer(repeating: 0x61, count: ProxyLimits.maxPendingRequestBody + 1)
        let action = machine.clientBody(big)
        #expect(action == .queued(pauseClient: true))
        // Past the replay limit, nothing is kept for a retry.
        #expect(machine.replayableBody.isEmpty)
        #expect(!machine.replayable)
    }

    @Test("the client going away while connecting: the request is over, a late connection is not reused")
    func clientGoneWhileConnecting() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        _ = machine.clientBody(ByteBuffer(string: "abc"))
        let reuse = machine.finish(reusingConnection: false)
        #expect(!reuse)
        #expect(machine.finished)
        let body = machine.clientBody(ByteBuffer(string: "more"))
        #expect(body == .none)
        let end = machine.clientEnd()
        #expect(!end)
        let part = machine.responsePart(.head(Self.response()), gripAllowed: true)
        #expect(part == .none)
        let closed = machine.backendClosed()
        #expect(closed == .none)
    }

    @Test("a plain response is relayed, and its connection reused only when the whole request was sent")
    func relayed() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        _ = machine.backendConnected()
        _ = machine.clientEnd()
        let head = machine.responsePart(
            .head(Self.response(.ok, ["Content-Length": "5", "Keep-Alive": "x"])),
            gripAllowed: true
        )
        #expect(head == .relayHead(Self.response(.ok, ["Content-Length": "5"])))
        #expect(machine.isPassingBodyOn)
        let body = machine.responsePart(.body(ByteBuffer(string: "hello")), gripAllowed: true)
        #expect(body == .relayBody(ByteBuffer(string: "hello")))
        let end = machine.responsePart(.end(nil), gripAllowed: true)
        #expect(end == .completeRelayed(reuseConnection: true, trailers: nil, keepClient: true))
        let reuse = machine.finish(reusingConnection: true)
        #expect(reuse)
    }

    @Test("a response that ends before the request body was sent does not reuse the connection or keep the client")
    func responseBeforeRequestEnd() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        _ = machine.backendConnected()
        _ = machine.responsePart(.head(Self.response()), gripAllowed: true)
        let end = machine.responsePart(.end(nil), gripAllowed: true)
        #expect(end == .completeRelayed(reuseConnection: true, trailers: nil, keepClient: false))
        let reuse = machine.finish(reusingConnection: true)
        #expect(!reuse)
    }

    @Test("an HTTP/1.0 client of a response without length is told the connection closes")
    func http10WithoutLength() {
        var head = Self.request(.http1_0, method: .GET)
        head.headers.add(name: "Connection", value: "keep-alive")
        var machine = ProxyExchangeStateMachine(requestHead: head)
        _ = machine.backendConnected()
        let action = machine.responsePart(.head(Self.response(.ok, [:])), gripAllowed: true)
        #expect(
            action == .relayHead(HTTPResponseHead(version: .http1_0, status: .ok, headers: ["Connection": "close"]))
        )
        #expect(!machine.clientKeepAlive)
    }

    @Test("GRIP instructions are buffered whole, then acted on; too large ones fail")
    func gripResponse() {
        let grip = Self.response(.ok, ["Grip-Hold": "response", "Grip-Channel": "a"])
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        _ = machine.backendConnected()
        let head = machine.responsePart(.head(grip), gripAllowed: true)
        #expect(head == .none)
        #expect(!machine.isPassingBodyOn)
        _ = machine.responsePart(.body(ByteBuffer(string: "wai")), gripAllowed: true)
        _ = machine.responsePart(.body(ByteBuffer(string: "t")), gripAllowed: true)
        let end = machine.responsePart(.end(nil), gripAllowed: true)
        #expect(end == .gripComplete(grip, ByteBuffer(string: "wait")))

        var large = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        _ = large.backendConnected()
        _ = large.responsePart(.head(grip), gripAllowed: true)
        let body = ByteBuffer(repeating: 0x61, count: ProxyLimits.maxGripResponseBody + 1)
        let refused = large.responsePart(.body(body), gripAllowed: true)
        #expect(refused == .fail(.originError))
    }

    @Test("GRIP headers from a backend of a trusted client or a no_grip route are relayed as they are")
    func gripNotAllowed() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        _ = machine.backendConnected()
        let head = machine.responsePart(.head(Self.response(.ok, ["Grip-Hold": "stream"])), gripAllowed: false)
        #expect(head == .relayHead(Self.response(.ok, ["Grip-Hold": "stream"])))
    }

    @Test("GRIP instructions for a request too large to send again are refused")
    func gripRequestTooLarge() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        _ = machine.backendConnected()
        _ = machine.clientBody(ByteBuffer(repeating: 0x61, count: ProxyLimits.maxBufferedRequestBody + 1))
        let action = machine.responsePart(.head(Self.response(.ok, ["Grip-Hold": "response"])), gripAllowed: true)
        #expect(action == .fail(.requestTooLargeForGrip))
    }

    @Test("a backend failing before its head: sent again on a fresh connection with the whole body, or a 502")
    func failsBeforeHead() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        _ = machine.clientBody(ByteBuffer(string: "abc"))
        _ = machine.clientEnd()
        _ = machine.backendConnected()
        #expect(machine.replayable)
        machine.retryingOnFreshConnection()
        let again = machine.backendConnected()
        #expect(again.body == [ByteBuffer(string: "abc")])
        #expect(again.end)
        let closed = machine.backendClosed()
        #expect(closed == .fail(.originError))
    }

    @Test("a backend failing mid-body aborts the client connection; once a head came it is not replayable")
    func failsMidBody() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        _ = machine.backendConnected()
        _ = machine.responsePart(.head(Self.response()), gripAllowed: true)
        _ = machine.responsePart(.body(ByteBuffer(string: "he")), gripAllowed: true)
        #expect(!machine.replayable)
        let closed = machine.backendClosed()
        #expect(closed == .abort)
    }

    @Test("a backend failing while GRIP instructions arrive is a 502")
    func failsMidGrip() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        _ = machine.backendConnected()
        _ = machine.responsePart(.head(Self.response(.ok, ["Grip-Hold": "response"])), gripAllowed: true)
        let closed = machine.backendClosed()
        #expect(closed == .fail(.originError))
    }

    @Test("a part out of order is an origin error")
    func unexpectedPart() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        _ = machine.backendConnected()
        let action = machine.responsePart(.body(ByteBuffer(string: "x")), gripAllowed: true)
        #expect(action == .fail(.originError))
    }

    @Test("the timeout: 504 before the head, an abort after it, later when the backend was active or the client slow")
    func timeouts() {
        let now = NIODeadline.uptimeNanoseconds(10_000_000_000)
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        let notConnected = machine.timeoutFired(now: now, lastActivity: now, timeout: .seconds(5), readPaused: false)
        #expect(notConnected == .none)
        _ = machine.backendConnected()
        let silent = machine.timeoutFired(
            now: now,
            lastActivity: now - .seconds(5),
            timeout: .seconds(5),
            readPaused: false
        )
        #expect(silent == .fail(.originTimeout))
        let active = machine.timeoutFired(
            now: now,
            lastActivity: now - .seconds(2),
            timeout: .seconds(5),
            readPaused: false
        )
        #expect(active == .rearm(.seconds(3)))
        let paused = machine.timeoutFired(
            now: now,
            lastActivity: now - .seconds(9),
            timeout: .seconds(5),
            readPaused: true
        )
        #expect(paused == .rearm(.seconds(5)))
        _ = machine.responsePart(.head(Self.response()), gripAllowed: true)
        let midBody = machine.timeoutFired(
            now: now,
            lastActivity: now - .seconds(6),
            timeout: .seconds(5),
            readPaused: false
        )
        #expect(midBody == .abort)
    }

    @Test("a next link is a GET without body; its plain 2xx is appended to the stream and its end ends the stream")
    func nextLink() throws {
        let base = try #require(URL(string: "http://example.com/a"))
        let link = try #require(NextLink.resolve(Instruct.Link(uri: "http://example.com/next"), against: base))
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        _ = machine.clientBody(ByteBuffer(string: "ignored"))
        _ = machine.clientEnd()
        machine.linkAttempts = 2
        machine.startBackendRequest(.nextLink(link, []))
        let sent = machine.backendConnected()
        #expect(sent.body.isEmpty)
        #expect(sent.end)
        let head = machine.responsePart(.head(Self.response()), gripAllowed: true)
        #expect(head == .none)
        #expect(machine.linkAttempts == 0)
        let body = machine.responsePart(.body(ByteBuffer(string: "item")), gripAllowed: true)
        #expect(body == .relayBody(ByteBuffer(string: "item")))
        let end = machine.responsePart(.end(nil), gripAllowed: true)
        #expect(end == .endStream(reuseConnection: true))
        let reuse = machine.finish(reusingConnection: true)
        #expect(reuse)
    }

    @Test("a next link failing: a non-2xx is an error (a failed attempt), a close mid-append ends the stream")
    func nextLinkFailures() throws {
        let base = try #require(URL(string: "http://example.com/a"))
        let link = try #require(NextLink.resolve(Instruct.Link(uri: "/next"), against: base))
        var refused = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        refused.startBackendRequest(.nextLink(link, []))
        _ = refused.backendConnected()
        let status = refused.responsePart(.head(Self.response(.serviceUnavailable)), gripAllowed: true)
        #expect(status == .fail(.originError))

        var cut = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        cut.startBackendRequest(.nextLink(link, []))
        _ = cut.backendConnected()
        _ = cut.responsePart(.head(Self.response()), gripAllowed: true)
        let closed = cut.backendClosed()
        #expect(closed == .endStream)
    }

    @Test("JSON-P: the described request replaces the client's, and the client's own body is ignored")
    func jsonpRequest() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request(method: .GET))
        let described = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/b", headers: ["Content-Length": "2"])
        machine.replaceRequest(described, body: Array("{}".utf8))
        let ignored = machine.clientBody(ByteBuffer(string: "client"))
        #expect(ignored == .none)
        _ = machine.clientEnd()
        let sent = machine.backendConnected()
        #expect(sent.body == [ByteBuffer(string: "{}")])
        #expect(machine.requestHead.uri == "/b")
    }

    @Test("a retry for a held client sends the whole request body again")
    func retryResendsBody() {
        var machine = ProxyExchangeStateMachine(requestHead: Self.request())
        _ = machine.clientBody(ByteBuffer(string: "abc"))
        _ = machine.clientEnd()
        _ = machine.backendConnected()
        _ = machine.finish(reusingConnection: true)
        machine.startBackendRequest(.retry([]))
        #expect(!machine.finished)
        let sent = machine.backendConnected()
        #expect(sent.body == [ByteBuffer(string: "abc")])
        #expect(sent.end)
    }
}

/// ``HoldPacing``: a slow stream client, keep-alive spacing and next-link back-off, without timers.
@Suite("A held exchange's pacing")
struct HoldPacingTests {
    @Test("a stream client that stops reading is dropped after too many writes, one that reads again is not")
    func slowClient() {
        var pacing = HoldPacing()
        for _ in 0..<HoldPacing.maxWritesWhileUnwritable {
            let tooSlow = pacing.wrote(10, clientWritable: false)
            #expect(!tooSlow)
        }
        let reading = pacing.wrote(10, clientWritable: true)
        #expect(!reading)
        #expect(pacing.writesWhileUnwritable == 0)
        for _ in 0..<HoldPacing.maxWritesWhileUnwritable {
            _ = pacing.wrote(10, clientWritable: false)
        }
        let dropped = pacing.wrote(10, clientWritable: false)
        #expect(dropped)
        #expect(pacing.bytesWritten == 10 * (2 * HoldPacing.maxWritesWhileUnwritable + 2))
    }

    @Test("a stream client is dropped once too many bytes wait for it")
    func slowClientBytes() {
        var pacing = HoldPacing()
        let first = pacing.wrote(HoldPacing.maxBytesWhileUnwritable, clientWritable: false)
        #expect(!first)
        let second = pacing.wrote(1, clientWritable: false)
        #expect(second)
    }

    @Test("keep-alives come up to a second early (a tenth of the period at most)")
    func keepAliveSpacing() {
        #expect(HoldPacing.keepAliveDelay(periodSeconds: 20, jitter: 0) == .seconds(20))
        #expect(HoldPacing.keepAliveDelay(periodSeconds: 20, jitter: 0.999) > .milliseconds(19_000))
        #expect(HoldPacing.keepAliveDelay(periodSeconds: 1, jitter: 0.999) > .milliseconds(899))
    }

    @Test("next-link retries back off 1, 2, 4, 8, 16 s, then the stream ends")
    func linkBackOff() {
        let delays = (1...6).map { HoldPacing.linkRetryDelay(attempts: $0, jitter: 0) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), nil])
        #expect(HoldPacing.linkRetryDelay(attempts: 1, jitter: 0.5) == .milliseconds(1500))
    }
}
