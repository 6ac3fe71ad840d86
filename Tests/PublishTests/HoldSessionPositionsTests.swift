import GRIP
import Publish
import Testing

/// A session's positions: what a held client's description (the proxy's `HeldExchangeRecord`) carries of where the
/// client is on each channel.
@Suite struct HoldSessionPositionsTests {
    @Test("positions start at the hold's prev-ids and follow the ids of the items sent")
    func positionsFollowDeliveries() async throws {
        try await withHub { hub in
            let connection = RecordingConnection()
            let session = try await hold(
                hub,
                holdRequest(.stream, channels: [("news", nil), ("quiet", nil)]),
                connection
            )
            let unknown: [String: String?] = ["news": nil, "quiet": nil]
            #expect(session.positions == unknown)
            try await hub.publish([textItem("news", "a\n", id: "n1")])
            _ = try await connection.waitFor { $0.count == 1 }
            let sent: [String: String?] = ["news": "n1", "quiet": nil]
            #expect(session.positions == sent)
            session.end()
        }
    }
}
