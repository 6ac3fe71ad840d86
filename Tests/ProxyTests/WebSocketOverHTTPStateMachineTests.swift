import GRIP
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import Proxy

/// ``WebSocketOverHTTPStateMachine`` driven event by event, without sockets or timers: each test feeds the events
/// a connection would see and checks the actions, in order.
@Suite struct WebSocketOverHTTPStateMachineTests {
    typealias Machine = WebSocketOverHTTPStateMachine

    static func machine(oneEvent: Bool = false) -> Machine {
        Machine(session: WebSocketOverHTTPSession(connectionID: "c1", oneEventPerRequest: oneEvent))
    }

    static func eventsReply(_ events: [WebSocketEvent], _ extra: [(String, String)] = []) -> (HTTPHeaders, ByteBuffer) {
        (
            HTTPHeaders([("Content-Type", WebSocketEvent.contentType)] + extra),
            ByteBuffer(bytes: WebSocketEvent.encode(events))
        )
    }

    /// Feeds a reply and applies its events, as the handler does; returns every action.
    static func reply(
        _ machine: inout Machine,
        _ events: [WebSocketEvent],
        headers extra: [(String, String)] = []
    ) -> [Machine.Action] {
        let (headers, body) = Self.eventsReply(events, extra)
        return Self.applying(&machine, machine.replied(status: .ok, headers: headers, body: body))
    }

    /// Expands `.applyBackendEvents` as the handler does.
    static func applying(_ machine: inout Machine, _ actions: [Machine.Action]) -> [Machine.Action] {
        var all: [Machine.Action] = []
        for action in actions {
            all.append(action)
            if case .applyBackendEvents = action {
                while let step = machine.nextBackendEvent() {
                    all += step
                }
                all += machine.backendEventsApplied()
            }
        }
        return all
    }

    /// A machine whose `OPEN` was accepted, with nothing in flight.
    static func opened(oneEvent: Bool = false, headers: [(String, String)] = []) -> Machine {
        var machine = Self.machine(oneEvent: oneEvent)
        _ = machine.start()
        _ = Self.reply(&machine, [.open], headers: headers)
        return machine
    }

    static func text(_ string: String) -> WebSocketMessage { .text(ByteBuffer(string: string)) }

    // MARK: - Opening

    @Test func startSendsOpen() {
        var machine = Self.machine()
        #expect(machine.start() == [.cancelKeepAlive, .send([.open], retry: false)])
        #expect(machine.session.inFlight == [.open])
        #expect(machine.session.phase == .opening)
    }

    @Test func anAcceptedOpenUpgradesReadsMetaAndAppliesTheRestOfTheReply() {
        var machine = Self.machine()
        _ = machine.start()
        let actions = Self.reply(
            &machine,
            [.open, .text(Array("hi".utf8)), .ping([1])],
            headers: [
                ("Set-Meta-User", "alice"), ("Keep-Alive-Interval", "5"), ("X-Custom", "a"),
                ("Sec-WebSocket-Extensions", "grip"),
            ]
        )
        let upgrade = HTTPHeaders([("X-Custom", "a"), ("Upgrade", "websocket"), ("Connection", "Upgrade")])
        #expect(
            actions == [
                .upgrade(upgrade, extensions: ["grip"]), .applyBackendEvents, .toGrip(Array("hi".utf8), .text),
                .sendToClient(.ping, [1]), .armKeepAlive(seconds: Machine.minKeepAliveInterval),
            ]
        )
        #expect(machine.session.phase == .open)
        #expect(machine.session.meta == ["User": "alice"])
        #expect(machine.session.keepAliveInterval == 20)
        #expect(machine.session.clientAttached)
    }

    @Test func aRefusedOpenIsRelayedAndAMalformedOneIs502() {
        var refused = Self.machine()
        _ = refused.start()
        let headers = HTTPHeaders([("Content-Type", "text/plain")])
        #expect(
            refused.replied(status: .forbidden, headers: headers, body: ByteBuffer(string: "no"))
                == [.relayRefusal(.forbidden, headers, ByteBuffer(string: "no"))]
        )
        #expect(refused.session.phase == .closing)

        var malformed = Self.machine()
        _ = malformed.start()
        let (eventsHeaders, _) = Self.eventsReply([])
        let actions = malformed.replied(status: .ok, headers: eventsHeaders, body: ByteBuffer(string: "GARBAGE"))
        #expect(actions.last == .respondBadGateway)

        var withoutOpen = Self.machine()
        _ = withoutOpen.start()
        #expect(Self.reply(&withoutOpen, [.text([1])]).last == .respondBadGateway)
        #expect(withoutOpen.session.phase == .closing)
    }

    @Test func aRefusedOpensBodyIsCut() {
        var machine = Self.machine()
        _ = machine.start()
        let body = ByteBuffer(repeating: 7, count: WebSocketClientHandshake.maxRejectionBody + 10)
        guard
            case .relayRefusal(_, _, let relayed) = machine.replied(status: .badRequest, headers: [:], body: body).first
        else {
            Issue.record("no refusal")
            return
        }
        #expect(relayed.readableBytes == WebSocketClientHandshake.maxRejectionBody)
    }

    @Test func anOpenThatCannotConnectIsNotRetried() {
        var machine = Self.machine()
        _ = machine.start()
        #expect(machine.connectFailed("refused").last == .respondBadGateway)
        #expect(machine.session.phase == .closing)
        #expect(machine.retryTimerFired() == [])
    }

    @Test func theClientLeavingWhileTheBackendIsConnectingAbandonsTheRequest() {
        var machine = Self.machine()
        _ = machine.start()
        #expect(machine.clientLeftWhileOpening() == [.abandonRequest])
        #expect(machine.session.phase == .closing)
        // Whatever the backend does afterwards reaches no client.
        #expect(Self.reply(&machine, [.open, .text([1])]) == [])
        #expect(machine.connectFailed("late") == [])
    }

    @Test func anUpgradeWithoutAClientSendsNothingMore() {
        var machine = Self.machine()
        _ = machine.start()
        let (headers, body) = Self.eventsReply([.open, .text([1])])
        let actions = machine.replied(status: .ok, headers: headers, body: body)
        #expect(actions.count == 2)
        machine.upgradeFailed()
        #expect(machine.nextBackendEvent() == nil)
        #expect(machine.backendEventsApplied() == [.cancelKeepAlive])
        #expect(machine.clientMessage(Self.text("x")) == [])
    }

    // MARK: - Messages

    @Test func messagesArrivingWhileARequestIsInFlightAreBatchedIntoTheNext() {
        var machine = Self.opened()
        #expect(machine.clientMessage(Self.text("a")) == [.cancelKeepAlive, .send([.text([97])], retry: false)])
        #expect(machine.clientMessage(Self.text("b")) == [])
        #expect(machine.clientMessage(.binary(ByteBuffer(bytes: [2]))) == [])
        #expect(machine.session.queued == [.text([98]), .binary([2])])
        #expect(
            Self.reply(&machine, [])
                == [
                    .applyBackendEvents, .cancelKeepAlive, .cancelKeepAlive,
                    .send([.text([98]), .binary([2])], retry: false),
                ]
        )
    }

    @Test func oneEventTargetsGetOneEventARequest() {
        var machine = Self.opened(oneEvent: true)
        _ = machine.clientMessage(Self.text("a"))
        _ = machine.clientMessage(Self.text("b"))
        _ = machine.clientMessage(Self.text("c"))
        #expect(Self.reply(&machine, []).last == .send([.text([98])], retry: false))
        #expect(machine.session.queued == [.text([99])])
    }

    @Test func aRequestCarriesAtMostItsContentLimit() {
        var machine = Self.opened()
        let big = [UInt8](repeating: 1, count: Machine.maxRequestContent - 10)
        _ = machine.clientMessage(Self.text("a"))
        _ = machine.clientMessage(.binary(ByteBuffer(bytes: big)))
        _ = machine.clientMessage(.binary(ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])))
        #expect(Self.reply(&machine, []).last == .send([.binary(big)], retry: false))
        #expect(machine.session.queued.count == 1)
    }

    @Test func pingsAndPongsFlowBothWays() {
        var machine = Self.opened()
        #expect(machine.clientMessage(.ping(ByteBuffer(bytes: [1]))).last == .send([.ping([1])], retry: false))
        let actions = Self.reply(&machine, [.pong([1]), .ping([2])])
        #expect(actions.contains(.sendToClient(.pong, [1])))
        #expect(actions.contains(.sendToClient(.ping, [2])))
        #expect(machine.clientMessage(.pong(ByteBuffer(bytes: [2]))).last == .send([.pong([2])], retry: false))
    }

    @Test func whatTheBackendDidNotAcceptGoesFirstInTheNextRequest() {
        var machine = Self.opened()
        _ = machine.clientMessage(Self.text("abcdef"))
        _ = machine.clientMessage(Self.text("g"))
        let actions = Self.reply(&machine, [], headers: [("Content-Bytes-Accepted", "2")])
        #expect(actions.last == .send([.text(Array("cdef".utf8)), .text(Array("g".utf8))], retry: false))
    }

    @Test func aBadContentBytesAcceptedClosesTheClient() {
        var machine = Self.opened()
        _ = machine.clientMessage(Self.text("ab"))
        let actions = Self.reply(&machine, [], headers: [("Content-Bytes-Accepted", "9")])
        #expect(actions.last == .closeClient(code: 1011, reason: "backend error", now: false))
        #expect(actions.contains(.send([.close(code: nil, reason: [])], retry: false)))
        #expect(machine.session.phase == .closing)
    }

    @Test func setMetaIsKeptAndAnEmptyValueRemovesIt() {
        var machine = Self.opened(headers: [("Set-Meta-A", "1"), ("Set-Meta-B", "2")])
        _ = machine.refresh()
        _ = Self.reply(&machine, [], headers: [("Set-Meta-A", "")])
        #expect(machine.session.meta == ["B": "2"])
    }

    // MARK: - Backend failures

    @Test func aRequestThatCannotConnectIsRetriedFiveTimesThenTheClientIsClosed() {
        var machine = Self.opened()
        _ = machine.clientMessage(Self.text("a"))
        for attempt in 1...Machine.maxConnectRetries {
            #expect(machine.connectFailed("refused") == [.retryLater(attempt: attempt)])
            #expect(machine.retryTimerFired() == [.send([.text([97])], retry: true)])
        }
        let actions = machine.connectFailed("refused")
        #expect(
            actions.dropFirst()
                == [
                    .cancelKeepAlive, .send([.close(code: nil, reason: [])], retry: false), .endSession,
                    .closeClient(code: 1011, reason: "backend unavailable", now: false),
                ]
        )
        #expect(Machine.retryDelay(attempt: 1, jitterMilliseconds: 5) == .milliseconds(1005))
        #expect(Machine.retryDelay(attempt: 5, jitterMilliseconds: 0) == .seconds(16))
    }

    @Test func theBackendFailingMidSessionClosesTheClientAndTellsTheBackend() {
        var machine = Self.opened()
        _ = machine.clientMessage(Self.text("a"))
        let actions = machine.requestFailed("backend closed the connection")
        #expect(
            actions.first
                == .log(.debug, "WebSocket-over-HTTP request failed", ["reason": "backend closed the connection"])
        )
        #expect(actions.last == .closeClient(code: 1011, reason: "backend unavailable", now: false))
        #expect(machine.session.phase == .closing)
        // The CLOSE's own reply only ends the exchange.
        #expect(Self.reply(&machine, [.close(code: 1000, reason: [])]) == [])
        // Timers of a request that is no longer in flight do nothing.
        #expect(machine.retryTimerFired() == [])
        #expect(machine.requestFailed("backend timed out") == [])
    }

    @Test func anErrorReplyClosesTheClient() {
        var machine = Self.opened()
        _ = machine.clientMessage(Self.text("a"))
        let actions = machine.replied(status: .internalServerError, headers: [:], body: ByteBuffer())
        #expect(
            actions.first
                == .log(.info, "backend answered a WebSocket-over-HTTP request with an error", ["p8.status": "500"])
        )
        #expect(actions.last == .closeClient(code: 1011, reason: "backend error", now: false))
    }

    // MARK: - Closing

    @Test func theClientsCloseIsSentAndTheBackendsAnswerPassedBack() {
        var machine = Self.opened()
        let close = machine.clientMessage(.close(code: 1000, reason: ByteBuffer(string: "bye")))
        #expect(
            close == [
                .endSession, .cancelKeepAlive, .send([.close(code: 1000, reason: Array("bye".utf8))], retry: false),
            ]
        )
        #expect(machine.session.phase == .closing)
        #expect(
            Self.reply(&machine, [.close(code: 4001, reason: Array("ok".utf8))])
                == [.closeClient(code: 4001, reason: "ok", now: true)]
        )
    }

    @Test func theClientsCloseIsEchoedWhenTheBackendAnswersWithoutOneOrFails() {
        var silent = Self.opened()
        _ = silent.clientMessage(.close(code: 1000, reason: ByteBuffer(string: "bye")))
        #expect(Self.reply(&silent, []) == [.closeClient(code: 1000, reason: "bye", now: true)])

        var failing = Self.opened()
        _ = failing.clientMessage(.close(code: 1001, reason: ByteBuffer()))
        #expect(failing.requestFailed("down").last == .closeClient(code: 1001, reason: "", now: true))
    }

    @Test func aCloseArrivingWhileARequestIsInFlightIsSentNext() {
        var machine = Self.opened()
        _ = machine.clientMessage(Self.text("a"))
        #expect(machine.clientMessage(.close(code: 1000, reason: ByteBuffer())) == [.endSession])
        #expect(
            Self.reply(&machine, [.text([1])]) == [
                .cancelKeepAlive, .send([.close(code: 1000, reason: [])], retry: false),
            ]
        )
        #expect(Self.reply(&machine, []) == [.closeClient(code: 1000, reason: "", now: true)])
    }

    @Test func theBackendsCloseStopsTheReplyAndStartsTheHandshake() {
        var machine = Self.opened()
        _ = machine.refresh()
        let actions = Self.reply(&machine, [.text([1]), .close(code: 4000, reason: Array("done".utf8)), .text([2])])
        #expect(
            actions == [
                .applyBackendEvents, .toGrip([1], .text), .endSession,
                .closeClient(code: 4000, reason: "done", now: false), .cancelKeepAlive,
            ]
        )
        // The client's answer ends the connection.
        #expect(machine.clientMessage(.close(code: 4000, reason: ByteBuffer())) == [.abortClient])
        #expect(machine.clientClosed() == [.endSession])
    }

    @Test func theBackendsDisconnectDropsTheClient() {
        var machine = Self.opened()
        _ = machine.refresh()
        #expect(
            Self.reply(&machine, [.disconnect]) == [.applyBackendEvents, .endSession, .abortClient, .cancelKeepAlive]
        )
    }

    @Test func aClientThatVanishesIsReportedWithDisconnect() {
        var machine = Self.opened()
        _ = machine.clientMessage(Self.text("a"))
        #expect(machine.clientClosed() == [.endSession])
        #expect(machine.session.queued == [.disconnect])
        #expect(Self.reply(&machine, [.text([1])]) == [.cancelKeepAlive, .send([.disconnect], retry: false)])
        // Its reply is ignored.
        #expect(Self.reply(&machine, [.text([1])]) == [])
    }

    @Test func theProxyClosingTheClientTellsTheBackendWithClose() {
        var machine = Self.opened()
        #expect(
            machine.closeClient(code: 1001, reason: "server shutting down")
                == [
                    .cancelKeepAlive, .send([.close(code: nil, reason: [])], retry: false), .endSession,
                    .closeClient(code: 1001, reason: "server shutting down", now: false),
                ]
        )
        #expect(machine.closeClient(code: 1000, reason: "again") == [])
    }

    // MARK: - Keep-alive, GRIP

    @Test func keepAlivePollsAreSentWithNothingQueued() {
        var machine = Self.opened(headers: [("Keep-Alive-Interval", "30")])
        #expect(machine.session.keepAliveInterval == 30)
        #expect(machine.keepAliveTimerFired() == [.cancelKeepAlive, .send([], retry: false)])
        // A request in flight answers for the next poll.
        #expect(machine.keepAliveTimerFired() == [])
        #expect(
            Self.reply(&machine, [], headers: [("Keep-Alive-Interval", "0")]) == [
                .applyBackendEvents, .cancelKeepAlive,
            ]
        )
        #expect(machine.session.keepAliveInterval == nil)
    }

    @Test func aDetachedConnectionSendsNothingAndAnswersTheClientsClose() {
        var machine = Self.opened(headers: [("Keep-Alive-Interval", "30")])
        _ = machine.clientMessage(Self.text("a"))
        _ = machine.clientMessage(Self.text("b"))
        #expect(machine.detach() == [.cancelKeepAlive])
        #expect(machine.session.queued.isEmpty)
        #expect(machine.clientMessage(Self.text("c")) == [])
        #expect(machine.refresh() == [])
        // The reply already in flight is still applied (publishes go on); nothing more is sent.
        #expect(Self.reply(&machine, [.text([1])]) == [.applyBackendEvents, .toGrip([1], .text), .cancelKeepAlive])
        #expect(machine.keepAliveTimerFired() == [])
        #expect(
            machine.clientMessage(.close(code: 1000, reason: ByteBuffer(string: "x")))
                == [.endSession, .closeClient(code: 1000, reason: "x", now: true)]
        )
    }

    @Test func aRefreshSendsARequestNowUnlessOneIsInFlight() {
        var machine = Self.opened()
        #expect(machine.refresh() == [.cancelKeepAlive, .send([], retry: false)])
        #expect(machine.refresh() == [])
    }

    @Test func aClosingClientSeesNoMoreBackendEvents() {
        var machine = Self.opened()
        _ = machine.refresh()
        let (headers, body) = Self.eventsReply([.text([1]), .text([2])])
        #expect(machine.replied(status: .ok, headers: headers, body: body) == [.applyBackendEvents])
        #expect(machine.nextBackendEvent() == [.toGrip([1], .text)])
        // The client goes away while the first event is applied.
        _ = machine.clientClosed()
        #expect(machine.nextBackendEvent() == nil)
    }

    // MARK: - As data

    @Test func aMachineMadeFromASessionGoesOnWhereItStood() {
        var original = Self.opened(headers: [("Set-Meta-User", "bob"), ("Keep-Alive-Interval", "25")])
        _ = original.clientMessage(Self.text("a"))
        _ = original.clientMessage(Self.text("b"))
        var restored = Machine(session: original.session)
        #expect(restored.session == original.session)
        #expect(restored.session.inFlight == [.text([97])])
        #expect(restored.session.queued == [.text([98])])
        #expect(Self.reply(&restored, []) == Self.reply(&original, []))
        #expect(restored.session == original.session)
        #expect(restored.session.meta == ["User": "bob"])
    }
}
