import GRIP
import Publish
import Testing

@testable import Proxy

/// ``HoldStateMachine``, event by event and without timers or a hub: long-polls, streams, late events, recovery
/// and shutdown.
@Suite("A held exchange's decisions")
struct HoldStateMachineTests {
    private static let timeoutAnswer = Instruct.Response(code: 200, reason: "OK", headers: [], body: Array("{}".utf8))
    private static let published = Instruct.Response(code: 200, reason: "OK", headers: [], body: Array("new".utf8))

    private static func machine(_ mode: Instruct.HoldMode, idle: Bool = false) -> (HoldStateMachine, Int) {
        var machine = HoldStateMachine()
        let generation = machine.begin(mode: mode, response: Self.timeoutAnswer, idleKeepAlive: idle)
        return (machine, generation)
    }

    @Test("a long-poll: held, activated, then answered by a publish; a second publish or its timeout does nothing")
    func longPollReleased() {
        var (machine, generation) = Self.machine(.response)
        let decided = machine.decided(.hold(resetChannels: []), generation: generation)
        #expect(decided == [.keepSession, .armResponseTimeout, .activateSession])
        let released = machine.released(Self.published, generation: generation)
        #expect(released == [.endHold, .respond(Self.published, resetChannels: [])])
        #expect(machine.hold == nil)
        let again = machine.released(Self.published, generation: generation)
        #expect(again.isEmpty)
        let timedOut = machine.timedOut(generation: generation)
        #expect(timedOut.isEmpty)
    }

    @Test("a long-poll's timeout answers with the hold's own response")
    func longPollTimesOut() {
        var (machine, generation) = Self.machine(.response)
        _ = machine.decided(.hold(resetChannels: []), generation: generation)
        let timedOut = machine.timedOut(generation: generation)
        #expect(timedOut == [.endHold, .respond(Self.timeoutAnswer, resetChannels: [])])
    }

    @Test("a long-poll too far behind is answered at once with P8-Reset, or sent again to the backend")
    func longPollResetAndRecover() {
        var (reset, generation) = Self.machine(.response)
        let answered = reset.decided(.reset(channels: ["a"]), generation: generation)
        #expect(answered == [.endHold, .respond(Self.timeoutAnswer, resetChannels: ["a"])])

        var (recovering, second) = Self.machine(.response)
        let gripLast = [GripLast(channel: "a", lastID: "1")]
        let recovered = recovering.decided(.recover(gripLast), generation: second)
        #expect(recovered == [.endHold, .retryRequest(gripLast)])
        #expect(recovering.hold == nil)
    }

    @Test("a stream: head, timers, then content; idle keep-alives are re-armed by content")
    func stream() {
        var (machine, generation) = Self.machine(.stream, idle: true)
        let decided = machine.decided(.hold(resetChannels: ["b"]), generation: generation)
        #expect(
            decided == [
                .keepSession, .startStream(Self.timeoutAnswer, resetChannels: ["b"]), .armKeepAlive, .armLinkTimer,
                .activateSession,
            ]
        )
        // Content before the exchange wrote the head is not written.
        let early = machine.content(Array("x".utf8), generation: generation)
        #expect(early.isEmpty)
        machine.streamStarted = true
        let content = machine.content(Array("x".utf8), generation: generation)
        #expect(content == [.writeContent(Array("x".utf8)), .armKeepAlive, .armLinkTimer])

        var (interval, other) = Self.machine(.stream, idle: false)
        interval.streamStarted = true
        let plain = interval.content(Array("y".utf8), generation: other)
        #expect(plain == [.writeContent(Array("y".utf8)), .armLinkTimer])
    }

    @Test("a stream's close, a filter failure and a recovery")
    func streamEnds() {
        var (machine, generation) = Self.machine(.stream)
        _ = machine.decided(.hold(resetChannels: []), generation: generation)
        let closed = machine.streamClosed(generation: generation)
        #expect(closed == [.endStream(debugMessage: nil)])
        let filter = machine.filterFailed("bad", generation: generation)
        #expect(filter == [.endStream(debugMessage: "bad")])
        let gripLast = [GripLast(channel: "a", lastID: "7")]
        let recover = machine.recover(gripLast, generation: generation)
        #expect(recover == [.fetchNextLink(gripLast)])
        let decidedRecover = machine.decided(.recover(gripLast), generation: generation)
        #expect(decidedRecover == [.startStream(Self.timeoutAnswer, resetChannels: []), .fetchNextLink(gripLast)])
    }

    @Test("a long-poll whose filter fails answers 502 (or the message with debug)")
    func longPollFilterFails() {
        var (machine, generation) = Self.machine(.response)
        _ = machine.decided(.hold(resetChannels: []), generation: generation)
        let failed = machine.filterFailed("bad", generation: generation)
        #expect(failed == [.endHold, .respondFilterError("bad")])
    }

    @Test("events for an ended hold do nothing; its late decision only ends the session it brought")
    func lateEvents() {
        var (machine, first) = Self.machine(.stream)
        let second = machine.begin(mode: .stream, response: Self.timeoutAnswer, idleKeepAlive: false)
        #expect(second == first + 1)
        machine.streamStarted = true
        let decided = machine.decided(.hold(resetChannels: []), generation: first)
        #expect(decided == [.discardSession])
        let content = machine.content([1], generation: first)
        #expect(content.isEmpty)
        let closed = machine.streamClosed(generation: first)
        #expect(closed.isEmpty)
        let recover = machine.recover([], generation: first)
        #expect(recover.isEmpty)
        machine.end()
        let afterEnd = machine.content([1], generation: second)
        #expect(afterEnd.isEmpty)
    }

    @Test("shutting down: a long-poll gets its timeout answer, a stream ends, a request in flight answers itself")
    func quiesce() {
        var (longPoll, _) = Self.machine(.response)
        let answered = longPoll.quiesce(backendRequestFinished: true)
        #expect(answered == [.endHold, .respond(Self.timeoutAnswer, resetChannels: [])])

        var (stream, _) = Self.machine(.stream)
        let ended = stream.quiesce(backendRequestFinished: true)
        #expect(ended == [.endStream(debugMessage: nil)])

        var (fetching, _) = Self.machine(.stream)
        let waiting = fetching.quiesce(backendRequestFinished: false)
        #expect(waiting.isEmpty)

        var idle = HoldStateMachine()
        let none = idle.quiesce(backendRequestFinished: true)
        #expect(none.isEmpty)
    }

    @Test("a next link's GRIP answer: a long-poll hold ends the stream, no hold and no link appends and ends")
    func nextLinkAnswers() {
        #expect(
            HoldStateMachine.nextLinkAnswered(mode: .response, hasNextLink: true)
                == .endStream(debugMessage: "Next link returned non-stream hold.")
        )
        #expect(HoldStateMachine.nextLinkAnswered(mode: .none, hasNextLink: false) == .appendAndEnd)
        #expect(HoldStateMachine.nextLinkAnswered(mode: .none, hasNextLink: true) == .holdAgain)
        #expect(HoldStateMachine.nextLinkAnswered(mode: .stream, hasNextLink: false) == .holdAgain)
    }
}
