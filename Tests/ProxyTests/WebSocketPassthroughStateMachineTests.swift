import NIOCore
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import Proxy

/// ``WebSocketPassthroughStateMachine`` driven event by event, without sockets: the handshake, relaying, the close
/// handshake from either side, a side going away, and the GRIP control messages.
@Suite struct WebSocketPassthroughStateMachineTests {
    typealias Machine = WebSocketPassthroughStateMachine

    static let accepted = HTTPHeaders([("Upgrade", "websocket"), ("Sec-WebSocket-Accept", "x")])

    /// A machine with both sides upgraded; the backend enabled GRIP when `grip`.
    static func open(offersGrip: Bool = true, grip: Bool = false) -> Machine {
        var machine = Machine(offersGrip: offersGrip)
        _ = machine.connected()
        var headers = Self.accepted
        if grip {
            headers.add(name: "Sec-WebSocket-Extensions", value: "grip")
        }
        _ = machine.handshakeAnswered(status: .switchingProtocols, headers: headers, body: ByteBuffer())
        return machine
    }

    static func text(_ string: String) -> WebSocketMessage { .text(ByteBuffer(string: string)) }

    // MARK: - Handshake

    @Test func aBackendsUpgradeUpgradesBothSidesWithoutItsExtensions() {
        var machine = Machine(offersGrip: true)
        #expect(machine.connected() == .sendHandshake)
        var headers = Self.accepted
        headers.add(name: "Sec-WebSocket-Extensions", value: "grip; message-prefix=\"m:\"")
        #expect(
            machine.handshakeAnswered(status: .switchingProtocols, headers: headers, body: ByteBuffer())
                == .upgrade(Self.accepted, extensions: ["grip; message-prefix=\"m:\""], gripMessages: true)
        )
        #expect(machine.phase == .open)
        #expect(machine.gripMessages)
    }

    @Test func gripMessagesOnlyWhenTheRouteOffersGripAndTheBackendTakesIt() {
        #expect(!Self.open(offersGrip: false, grip: true).gripMessages)
        #expect(!Self.open(offersGrip: true, grip: false).gripMessages)
        #expect(Self.open(offersGrip: true, grip: true).gripMessages)
    }

    @Test func aRefusedHandshakeIsRelayedAndNothingFollows() {
        var machine = Machine(offersGrip: true)
        _ = machine.connected()
        let headers = HTTPHeaders([("Content-Type", "text/plain")])
        #expect(
            machine.handshakeAnswered(status: .forbidden, headers: headers, body: ByteBuffer(string: "no"))
                == .relayRefusal(.forbidden, headers, ByteBuffer(string: "no"))
        )
        #expect(machine.phase == .closed)
        #expect(machine.failed() == .none)
        #expect(machine.message(Self.text("x"), from: .client) == .none)
    }

    @Test func aHandshakeThatFailsOrTimesOutIs502Once() {
        var machine = Machine(offersGrip: true)
        _ = machine.connected()
        #expect(machine.failed() == .respondBadGateway)
        #expect(machine.failed() == .none)
        #expect(machine.connected() == .closeConnection)
    }

    @Test func anUpgradeThatCannotSwitchTheBackendIs502() {
        var machine = Machine(offersGrip: false)
        _ = machine.connected()
        _ = machine.handshakeAnswered(status: .switchingProtocols, headers: Self.accepted, body: ByteBuffer())
        #expect(machine.upgradeFailed() == .respondBadGateway)
        #expect(machine.phase == .closed)
    }

    @Test func theClientLeavingWhileTheBackendIsConnecting() {
        var machine = Machine(offersGrip: true)
        #expect(machine.clientLeftWhileOpening() == .abandon)
        // The connection made afterwards is closed; its answers change nothing.
        #expect(machine.connected() == .closeConnection)
        #expect(machine.handshakeAnswered(status: .switchingProtocols, headers: [:], body: ByteBuffer()) == .none)
        #expect(machine.failed() == .none)
        #expect(machine.clientLeftWhileOpening() == .none)
    }

    // MARK: - Relaying

    @Test func messagesPingsAndPongsGoToTheOtherSide() {
        var machine = Self.open()
        #expect(machine.message(Self.text("a"), from: .client) == .forward(Self.text("a"), to: .backend))
        #expect(
            machine.message(.binary(ByteBuffer(bytes: [1])), from: .backend)
                == .forward(.binary(ByteBuffer(bytes: [1])), to: .client)
        )
        #expect(
            machine.message(.ping(ByteBuffer(bytes: [2])), from: .backend)
                == .forward(.ping(ByteBuffer(bytes: [2])), to: .client)
        )
        #expect(
            machine.message(.pong(ByteBuffer(bytes: [2])), from: .client)
                == .forward(.pong(ByteBuffer(bytes: [2])), to: .backend)
        )
        #expect(machine.fragmentTarget(from: .client) == .backend)
        #expect(machine.fragmentTarget(from: .backend) == .client)
    }

    @Test func withGripTheBackendsMessagesGoToTheGripLayerButNotItsPings() {
        var machine = Self.open(grip: true)
        #expect(machine.message(Self.text("m:hi"), from: .backend) == .toGrip(ByteBuffer(string: "m:hi"), .text))
        #expect(
            machine.message(.binary(ByteBuffer(bytes: [1])), from: .backend) == .toGrip(ByteBuffer(bytes: [1]), .binary)
        )
        #expect(machine.message(.ping(ByteBuffer()), from: .backend) == .forward(.ping(ByteBuffer()), to: .client))
        #expect(machine.message(Self.text("c"), from: .client) == .forward(Self.text("c"), to: .backend))
    }

    @Test func nothingIsRelayedBeforeTheUpgradeOrAfterTheEnd() {
        var machine = Machine(offersGrip: true)
        #expect(machine.message(Self.text("a"), from: .client) == .none)
        #expect(machine.fragmentTarget(from: .client) == nil)
        machine = Self.open()
        _ = machine.closed(.client)
        #expect(machine.message(Self.text("a"), from: .backend) == .none)
        #expect(machine.fragmentTarget(from: .backend) == nil)
    }

    // MARK: - Closing

    @Test func theClientsCloseHandshakeIsPassedOnAndItsAnswerBack() {
        var machine = Self.open()
        #expect(
            machine.message(.close(code: 1000, reason: ByteBuffer(string: "bye")), from: .client)
                == .forwardClose(code: 1000, reason: "bye", to: .backend, now: false)
        )
        #expect(machine.phase == .closing)
        // Frames still in flight are relayed during the handshake.
        #expect(machine.message(Self.text("late"), from: .backend) == .forward(Self.text("late"), to: .client))
        #expect(
            machine.message(.close(code: 1000, reason: ByteBuffer()), from: .backend)
                == .forwardClose(code: 1000, reason: "", to: .client, now: true)
        )
        #expect(machine.closed(.backend) == .ended(.backend, abortOther: true))
        #expect(machine.closed(.client) == .ended(.client, abortOther: true))
    }

    @Test func theBackendsCloseHandshakeIsPassedOnAndItsAnswerBack() {
        var machine = Self.open()
        #expect(
            machine.message(.close(code: 4000, reason: ByteBuffer(string: "done")), from: .backend)
                == .forwardClose(code: 4000, reason: "done", to: .client, now: false)
        )
        #expect(
            machine.message(.close(code: 4000, reason: ByteBuffer()), from: .client)
                == .forwardClose(code: 4000, reason: "", to: .backend, now: true)
        )
    }

    @Test func theBackendFailingMidSessionClosesTheClientWith1011() {
        var machine = Self.open()
        #expect(machine.closed(.backend) == .ended(.backend, abortOther: false))
        #expect(machine.phase == .closed)
    }

    @Test func aClientThatVanishesDropsTheBackend() {
        var machine = Self.open()
        #expect(machine.closed(.client) == .ended(.client, abortOther: true))
    }

    // MARK: - GRIP

    @Test func detachClosesTheBackendAndKeepsTheClient() {
        var machine = Self.open(grip: true)
        #expect(machine.detach() == .closeBackend)
        #expect(machine.detach() == .none)
        #expect(machine.message(Self.text("a"), from: .client) == .none)
        #expect(machine.fragmentTarget(from: .client) == nil)
        // The backend's answer to the close, and its connection going, leave the client alone.
        #expect(machine.message(.close(code: 1000, reason: ByteBuffer()), from: .backend) == .none)
        #expect(machine.closed(.backend) == .forgetBackend)
        #expect(machine.phase == .open)
        #expect(
            machine.message(.close(code: 1000, reason: ByteBuffer(string: "x")), from: .client)
                == .answerClose(code: 1000, reason: "x")
        )
        #expect(machine.closed(.client) == .ended(.client, abortOther: true))
    }

    @Test func aGripCloseClosesBothSidesOrOnlyTheClientOnceDetached() {
        var machine = Self.open(grip: true)
        #expect(machine.close(code: 4001, reason: "kick") == .closeBoth(code: 4001, reason: "kick", backend: true))
        #expect(machine.close(code: 4001, reason: "kick") == .none)

        var detached = Self.open(grip: true)
        _ = detached.detach()
        #expect(
            detached.close(code: 1001, reason: "server shutting down")
                == .closeBoth(code: 1001, reason: "server shutting down", backend: false)
        )
    }
}
