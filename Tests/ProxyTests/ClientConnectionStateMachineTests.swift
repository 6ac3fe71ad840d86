import NIOCore
import NIOHTTP1
import Testing

@testable import Proxy

/// ``ClientConnectionStateMachine``, event by event and without sockets: pipelining, pausing, half-close,
/// shutdown and unparsable requests.
@Suite("A client connection's decisions")
struct ClientConnectionStateMachineTests {
    private static func head(_ uri: String = "/") -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: ["Host": "example.com"])
    }

    private static func body(_ text: String) -> ByteBuffer {
        ByteBuffer(string: text)
    }

    @Test("a request's parts go to the exchange; the connection stays open for the next one")
    func oneRequest() {
        var machine = ClientConnectionStateMachine()
        let result1 = machine.partRead(.head(Self.head()))
        #expect(result1 == .startRequest(Self.head()))
        let result2 = machine.partRead(.body(Self.body("abc")))
        #expect(result2 == .forwardBody(Self.body("abc")))
        let result3 = machine.partRead(.end(nil))
        #expect(result3 == .forwardEnd)
        #expect(machine.state == .answering(bodyArriving: false))
        machine.responseHeadWritten()
        let result4 = machine.responseEnded(keepAlive: true)
        #expect(result4 == .keepOpen(deliverQueued: false, read: false))
        #expect(machine.state == .idle)
    }

    @Test("a pipelined request waits behind a held one, then is handed over part by part")
    func pipelinedBehindHold() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head("/held")))
        _ = machine.partRead(.end(nil))
        // The exchange holds (a long-poll): nothing is written yet, the next request arrives.
        let result5 = machine.partRead(.head(Self.head("/next")))
        #expect(result5 == .none)
        let result6 = machine.partRead(.body(Self.body("xy")))
        #expect(result6 == .none)
        let result7 = machine.partRead(.end(nil))
        #expect(result7 == .none)
        #expect(machine.queuedParts.count == 3)
        #expect(machine.queuedBytes == 2)
        let result8 = machine.nextQueuedPart()
        #expect(result8 == nil)
        // A publish releases the long-poll.
        machine.responseHeadWritten()
        let result9 = machine.responseEnded(keepAlive: true)
        #expect(result9 == .keepOpen(deliverQueued: true, read: false))
        let result10 = machine.nextQueuedPart()
        #expect(result10 == .startRequest(Self.head("/next")))
        let result11 = machine.nextQueuedPart()
        #expect(result11 == .forwardBody(Self.body("xy")))
        let result12 = machine.nextQueuedPart()
        #expect(result12 == .forwardEnd)
        let result13 = machine.nextQueuedPart()
        #expect(result13 == nil)
        #expect(machine.queuedBytes == 0)
        #expect(!machine.responseStarted)
    }

    @Test("queued requests stop at the next request whose response is not complete")
    func queueStopsAtNextRequest() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head("/1")))
        _ = machine.partRead(.end(nil))
        for uri in ["/2", "/3"] {
            _ = machine.partRead(.head(Self.head(uri)))
            _ = machine.partRead(.end(nil))
        }
        _ = machine.responseEnded(keepAlive: true)
        let result14 = machine.nextQueuedPart()
        #expect(result14 == .startRequest(Self.head("/2")))
        let result15 = machine.nextQueuedPart()
        #expect(result15 == .forwardEnd)
        let result16 = machine.nextQueuedPart()
        #expect(result16 == nil)
        #expect(machine.queuedParts.count == 2)
    }

    @Test("too many queued bytes pause reading; handing them over resumes it")
    func queuePausesReading() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head()))
        _ = machine.partRead(.end(nil))
        _ = machine.partRead(.head(Self.head()))
        let big = ByteBuffer(repeating: 0x61, count: ClientConnectionStateMachine.maxQueuedBytes + 1)
        _ = machine.partRead(.body(big))
        #expect(machine.pausedForQueue)
        let result17 = machine.readRequested()
        #expect(!result17)
        #expect(machine.readPending)
        _ = machine.responseEnded(keepAlive: true)
        while machine.nextQueuedPart() != nil {}
        let result18 = machine.queueDelivered()
        #expect(result18)
        #expect(!machine.pausedForQueue)
        #expect(!machine.readPending)
    }

    @Test("a backend that cannot take more pauses reading until it can, and a response's end resumes it")
    func backendPausesReading() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head()))
        let result19 = machine.backendPaused(true)
        #expect(!result19)
        let result20 = machine.readRequested()
        #expect(!result20)
        let result21 = machine.backendPaused(false)
        #expect(result21)
        let result22 = machine.readRequested()
        #expect(result22)
        let result23 = machine.backendPaused(true)
        #expect(!result23)
        let result24 = machine.readRequested()
        #expect(!result24)
        // The response ends (say, an error) before the body was read: reading resumes to drain it.
        let result25 = machine.responseEnded(keepAlive: true)
        #expect(result25 == .keepOpen(deliverQueued: false, read: true))
        #expect(machine.state == .draining)
        let result26 = machine.partRead(.body(Self.body("rest")))
        #expect(result26 == .none)
        let result27 = machine.partRead(.end(nil))
        #expect(result27 == .none)
        #expect(machine.state == .idle)
    }

    @Test("a response that does not keep the connection closes it and drops queued requests")
    func responseCloses() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head()))
        _ = machine.partRead(.end(nil))
        _ = machine.partRead(.head(Self.head("/next")))
        let result28 = machine.responseEnded(keepAlive: false)
        #expect(result28 == .close)
        #expect(machine.queuedParts.isEmpty)
        let result29 = machine.partRead(.end(nil))
        #expect(result29 == .none)
    }

    @Test("a half-close after a request is answered; then the connection closes")
    func halfCloseAfterRequest() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head()))
        _ = machine.partRead(.end(nil))
        let result30 = machine.inputClosed(exchangeIsHeld: false)
        #expect(result30 == .none)
        machine.responseHeadWritten()
        let result31 = machine.responseEnded(keepAlive: true)
        #expect(result31 == .close)
    }

    @Test("a half-close with pipelined requests queued answers them all before closing")
    func halfCloseWithQueue() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head("/1")))
        _ = machine.partRead(.end(nil))
        _ = machine.partRead(.head(Self.head("/2")))
        _ = machine.partRead(.end(nil))
        let result32 = machine.inputClosed(exchangeIsHeld: true)
        #expect(result32 == .none)
        let result33 = machine.responseEnded(keepAlive: true)
        #expect(result33 == .keepOpen(deliverQueued: true, read: false))
        _ = machine.nextQueuedPart()
        _ = machine.nextQueuedPart()
        let result34 = machine.responseEnded(keepAlive: true)
        #expect(result34 == .close)
    }

    @Test("a half-close while held, once a response started, or while idle ends the connection")
    func halfCloseEnds() {
        var held = ClientConnectionStateMachine()
        _ = held.partRead(.head(Self.head()))
        _ = held.partRead(.end(nil))
        let result35 = held.inputClosed(exchangeIsHeld: true)
        #expect(result35 == .close)

        var streaming = ClientConnectionStateMachine()
        _ = streaming.partRead(.head(Self.head()))
        _ = streaming.partRead(.end(nil))
        streaming.responseHeadWritten()
        let result36 = streaming.inputClosed(exchangeIsHeld: false)
        #expect(result36 == .close)

        var idle = ClientConnectionStateMachine()
        let result37 = idle.inputClosed(exchangeIsHeld: false)
        #expect(result37 == .close)
    }

    @Test("shutting down: an idle connection closes now, a busy one asks its exchange, then closes after it")
    func quiesce() {
        var idle = ClientConnectionStateMachine()
        let result38 = idle.quiesce()
        #expect(result38 == .close)

        var busy = ClientConnectionStateMachine()
        _ = busy.partRead(.head(Self.head()))
        _ = busy.partRead(.end(nil))
        let result39 = busy.quiesce()
        #expect(result39 == .quiesceExchange)
        let result40 = busy.responseEnded(keepAlive: true)
        #expect(result40 == .close)
    }

    @Test("the shutdown deadline ends a started response cleanly, and closes anything else")
    func shutdownDeadline() {
        var started = ClientConnectionStateMachine()
        _ = started.partRead(.head(Self.head()))
        started.responseHeadWritten()
        let result41 = started.shutdownDeadline()
        #expect(result41 == .endResponseAndClose)

        var waiting = ClientConnectionStateMachine()
        _ = waiting.partRead(.head(Self.head()))
        let result42 = waiting.shutdownDeadline()
        #expect(result42 == .close)
    }

    @Test("an unparsable request is answered when no response started, else the connection just closes")
    func parseErrors() {
        var fresh = ClientConnectionStateMachine()
        let result43 = fresh.parseError(.headerOverflow)
        #expect(result43 == .respondAndClose(.headersTooLarge))
        var other = ClientConnectionStateMachine()
        let result44 = other.parseError(.invalidMethod)
        #expect(result44 == .respondAndClose(.malformedRequest))
        var started = ClientConnectionStateMachine()
        _ = started.partRead(.head(Self.head()))
        started.responseHeadWritten()
        let result45 = started.parseError(.invalidMethod)
        #expect(result45 == .close)
    }

    @Test("after a WebSocket handshake starts nothing more is read as HTTP; a refused one closes")
    func webSocket() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head()))
        machine.webSocketStarted()
        let result46 = machine.partRead(.body(Self.body("frame")))
        #expect(result46 == .none)
        let result47 = machine.partRead(.head(Self.head()))
        #expect(result47 == .none)
        #expect(machine.queuedParts.isEmpty)
        let result48 = machine.responseEnded(keepAlive: false)
        #expect(result48 == .close)
    }

    @Test("the client going away mid-request drops what was queued")
    func clientGone() {
        var machine = ClientConnectionStateMachine()
        _ = machine.partRead(.head(Self.head()))
        _ = machine.partRead(.end(nil))
        _ = machine.partRead(.head(Self.head()))
        machine.channelInactive()
        #expect(machine.queuedParts.isEmpty)
        #expect(machine.state == .closed)
        let result49 = machine.nextQueuedPart()
        #expect(result49 == nil)
    }
}
