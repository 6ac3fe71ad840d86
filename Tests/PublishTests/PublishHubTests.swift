import Foundation
import GRIP
import Publish
import Store
import Synchronization
import Testing

@Suite struct PublishHubTests {
    @Test func streamHoldsReceiveContentInPublishOrder() async throws {
        try await withHub { hub in
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.stream, channels: [("news", nil)]), connection)
            try await hub.publish([textItem("news", "a\n"), textItem("news", "b\n")])
            try await hub.publish([textItem("other", "x\n")])
            try await hub.publish([textItem("news", "c\n")])
            _ = try await connection.waitFor { $0.count == 3 }
            #expect(connection.streamed == "a\nb\nc\n")
        }
    }

    @Test func aResponseHoldIsReleasedOnceWithTheMergedResponse() async throws {
        try await withHub { hub in
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.response, channels: [("lp", nil)]), connection)
            let format = HTTPResponseFormat(
                code: 201,
                headers: [HeaderField(name: "X-Pub", value: "1")],
                body: .bytes(Array("first\n".utf8))
            )
            try await hub.publish([PublishItem(channel: "lp", formats: PublishFormats(httpResponse: format))])
            try await hub.publish([textItem("lp", "second\n")])
            _ = try await connection.waitFor { !$0.isEmpty }
            try await allDelivered(hub)
            let events = connection.recorded
            #expect(
                events == [
                    .response(
                        code: 201,
                        headers: [
                            HeaderField(name: "X-Original", value: "yes"), HeaderField(name: "X-Pub", value: "1"),
                        ],
                        body: "first\n"
                    )
                ]
            )
            #expect(connection.recorded.count == 1)
            #expect(hub.subscriberCounts()["lp"] == nil)
        }
    }

    @Test func aStreamResumesAfterItsPositionThenGoesLive() async throws {
        try await withHub { hub in
            try await hub.publish([
                textItem("feed", "1\n", id: "a1"),
                textItem("feed", "2\n", id: "a2", prevID: "a1"),
                textItem("feed", "3\n", id: "a3", prevID: "a2"),
            ])
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.stream, channels: [("feed", "a1")]), connection)
            try await hub.publish([textItem("feed", "4\n", id: "a4", prevID: "a3")])
            _ = try await connection.waitFor { $0.count == 3 }
            #expect(connection.streamed == "2\n3\n4\n")
            #expect(hub.counters.resumes.load(ordering: .relaxed) == 1)
        }
    }

    @Test func aLongPollBehindItsChannelGetsTheNextItemAtOnce() async throws {
        try await withHub { hub in
            try await hub.publish([textItem("lp", "1\n", id: "b1"), textItem("lp", "2\n", id: "b2", prevID: "b1")])
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.response, channels: [("lp", "b1")]), connection)
            let events = try await connection.waitFor { !$0.isEmpty }
            #expect(
                events.first
                    == .response(code: 200, headers: [HeaderField(name: "X-Original", value: "yes")], body: "2\n")
            )
        }
    }

    @Test func anUnknownPositionOnAChannelWithPublisherIdsIsRecoveredThenReset() async throws {
        try await withHub { hub in
            try await hub.publish([textItem("ids", "1\n", id: "k1")])
            let connection = RecordingConnection()
            let first = await startHold(hub, holdRequest(.response, channels: [("ids", "k0")]), connection)
            guard case .recover(let gripLast) = first else {
                Issue.record("expected a recovery, got \(first)")
                return
            }
            #expect(gripLast == [GripLast(channel: "ids", lastID: "k0")])
            let again = await startHold(
                hub,
                holdRequest(.response, channels: [("ids", "k0")], isRecovery: true),
                connection
            )
            guard case .reset(let channels) = again else {
                Issue.record("expected a reset, got \(again)")
                return
            }
            #expect(channels == ["ids"])
            #expect(hub.subscriberCounts().isEmpty)
        }
    }

    @Test func aStreamWithoutNextLinkGetsTheResetSignalAndStaysLive() async throws {
        try await withHub { hub in
            try await hub.publish([textItem("sse", "1\n", id: "s1")])
            let connection = RecordingConnection()
            let decision = await startHold(
                hub,
                holdRequest(.stream, channels: [("sse", "gone")], eventStream: true),
                connection
            )
            guard case .hold(let session, let reset) = decision else {
                Issue.record("expected a hold, got \(decision)")
                return
            }
            #expect(reset == ["sse"])
            session.activate()
            try await hub.publish([textItem("sse", "2\n", id: "s2", prevID: "s1")])
            _ = try await connection.waitFor { $0.count == 2 }
            #expect(connection.streamed == "event: reset\ndata: sse\n\n2\n")
        }
    }

    @Test func aPositionUnknownToALogWithoutPublisherIdsHoldsLive() async throws {
        try await withHub { hub in
            try await hub.publish([textItem("plain", "1\n")])
            let connection = RecordingConnection()
            let decision = await startHold(hub, holdRequest(.response, channels: [("plain", "p1")]), connection)
            guard case .hold(let session, let reset) = decision else {
                Issue.record("expected a hold, got \(decision)")
                return
            }
            #expect(reset.isEmpty)
            session.activate()
            try await hub.publish([textItem("plain", "next\n", id: "p2", prevID: "p1")])
            let events = try await connection.waitFor { !$0.isEmpty }
            #expect(
                events.first
                    == .response(code: 200, headers: [HeaderField(name: "X-Original", value: "yes")], body: "next\n")
            )
        }
    }

    /// The backend's position was never published, but an item committed while the hold started names it as
    /// its prev-id: the client is just before that item, not lost.
    @Test func aPositionNamedByAnItemsPrevIdResumesFromThatItem() async throws {
        try await withHub { hub in
            try await hub.publish([textItem("race", "next\n", id: "p2", prevID: "p1")])
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.response, channels: [("race", "p1")]), connection)
            let events = try await connection.waitFor { !$0.isEmpty }
            #expect(
                events.first
                    == .response(code: 200, headers: [HeaderField(name: "X-Original", value: "yes")], body: "next\n")
            )
        }
    }

    @Test func aLiveItemOutOfTheHoldsChainAsksTheBackend() async throws {
        try await withHub { hub in
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.response, channels: [("chain", "p1")]), connection)
            try await hub.publish([textItem("chain", "x\n", id: "x1", prevID: "x0")])
            let events = try await connection.waitFor { !$0.isEmpty }
            #expect(events == [.recover([GripLast(channel: "chain", lastID: "p1")])])
        }
    }

    @Test func outOfOrderItemsAreDeliveredInPrevIdOrder() async throws {
        // A wait no commit can outrun: e3 must be released by e2, not by its wait ending.
        try await withHub(messageWait: 60_000) { hub in
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.stream, channels: [("order", nil)]), connection)
            try await hub.publish([textItem("order", "1\n", id: "e1")])
            try await hub.publish([textItem("order", "3\n", id: "e3", prevID: "e2")])
            try await hub.publish([textItem("order", "2\n", id: "e2", prevID: "e1")])
            _ = try await connection.waitFor { $0.count == 3 }
            #expect(connection.streamed == "1\n2\n3\n")
        }
    }

    @Test func anItemWaitingForAMissingPredecessorIsReleasedAfterMessageWait() async throws {
        try await withHub(messageWait: 300) { hub in
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.stream, channels: [("wait", nil)]), connection)
            try await hub.publish([textItem("wait", "1\n", id: "w1")])
            let start = ContinuousClock.now
            try await hub.publish([textItem("wait", "3\n", id: "w3", prevID: "w2")])
            _ = try await connection.waitFor { $0.count == 2 }
            #expect(ContinuousClock.now - start >= .milliseconds(250))
            #expect(connection.streamed == "1\n3\n")
            #expect(hub.counters.sequencerTimeouts.load(ordering: .relaxed) == 1)
        }
    }

    @Test func aResentIdIsNotDeliveredTwice() async throws {
        try await withHub { hub in
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.stream, channels: [("dup", nil)]), connection)
            try await hub.publish([textItem("dup", "A\n", id: "d")])
            try await hub.publish([textItem("dup", "B\n", id: "d")])
            try await hub.publish([textItem("dup", "C\n")])
            _ = try await connection.waitFor { $0.count == 2 }
            try await allDelivered(hub)
            #expect(connection.streamed == "A\nC\n")
            #expect(hub.counters.duplicates.load(ordering: .relaxed) == 1)
        }
    }

    @Test func theCloseActionEndsAStream() async throws {
        try await withHub { hub in
            let connection = RecordingConnection()
            _ = try await hold(hub, holdRequest(.stream, channels: [("bye", nil)]), connection)
            let close = PublishItem(
                channel: "bye",
                formats: PublishFormats(httpStream: HTTPStreamFormat(action: .close))
            )
            try await hub.publish([textItem("bye", "last\n"), close, textItem("bye", "after\n")])
            let events = try await connection.waitFor { $0.count == 2 }
            #expect(events == [.content("last\n"), .end])
        }
    }

    /// Holds start while a publisher keeps appending: every hold sees the items after its position exactly
    /// once and in order, whether they came from the log or live.
    @Test func resumeAndLiveDeliveryNeitherLoseNorRepeatItems() async throws {
        try await withHub { hub in
            try await hub.publish([textItem("race", "0,", id: "r0")])
            let publisher = Task {
                for index in 1...200 {
                    try await hub.publish([textItem("race", "\(index),", id: "r\(index)", prevID: "r\(index - 1)")])
                }
            }
            var holds: [(RecordingConnection, Int)] = []
            for _ in 0..<15 {
                // A position the client could have: an id already published (the publisher is ahead by the time
                // the hold starts).
                guard let newest = try await hub.store.newest(channel: "race"), let start = Int(newest.id.dropFirst())
                else {
                    throw HubTestError("no newest item")
                }
                let connection = RecordingConnection()
                _ = try await hold(hub, holdRequest(.stream, channels: [("race", newest.id)]), connection)
                holds.append((connection, start))
                try await Task.sleep(for: .milliseconds(2))
            }
            try await publisher.value
            for (connection, start) in holds {
                let expected = ((start + 1)...200).map { "\($0)," }.joined()
                _ = try await connection.waitFor { _ in connection.streamed.count >= expected.count }
                #expect(connection.streamed == expected, "hold from r\(start)")
            }
        }
    }
}
