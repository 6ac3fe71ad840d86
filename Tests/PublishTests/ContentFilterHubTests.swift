import Foundation
import GRIP
import Publish
import Testing

/// Filters on a real hub and store (grip-spec §3.7): content filters on live and replayed items, delivery filters
/// on items replayed from the log with the meta kept there.
@Suite struct ContentFilterHubTests {
    private static func request(
        _ mode: Instruct.HoldMode,
        prevID: String?,
        filters: [String],
        meta: [String: String]
    ) -> HoldRequest {
        HoldRequest(
            mode: mode,
            channels: [HoldRequest.Channel(name: "feed", backendName: "feed", prevID: prevID, filters: filters)],
            response: Instruct.Response(code: 200, reason: "OK", headers: [], body: []),
            meta: meta,
            hasNextLink: mode == .stream
        )
    }

    private static func item(
        _ id: String,
        prev: String?,
        _ text: String,
        filters: [String]? = nil,
        meta: [String: String] = [:]
    ) -> PublishItem {
        PublishItem(
            channel: "feed",
            id: id,
            prevID: prev,
            formats: PublishFormats(
                httpResponse: HTTPResponseFormat(body: .bytes(Array(text.utf8)), contentFilters: filters),
                httpStream: HTTPStreamFormat(content: Array(text.utf8), contentFilters: filters)
            ),
            meta: meta
        )
    }

    private static let eventMeta = ["id_format": "feed:%(feed)s", "user": "u1"]

    @Test func buildIDRendersTheChannelsIDAndAFilteredItemStillMovesThePosition() async throws {
        try await withHub { hub in
            let connection = RecordingConnection()
            let request = Self.request(.stream, prevID: "0", filters: ["skip-users", "build-id"], meta: Self.eventMeta)
            _ = try await hold(hub, request, connection)
            try await hub.publish([
                Self.item("1", prev: "0", "id: %I\n", filters: ["build-id"]),
                Self.item("2", prev: "1", "id: %I\n", filters: ["build-id"], meta: ["skip_users": "u0, u1"]),
                // Follows item 2, which this user skipped: still in sequence, so no recovery.
                Self.item("3", prev: "2", "id: %I\n", filters: ["build-id"]),
                Self.item("4", prev: "3", "id: %I\n", filters: ["var-subst"]),
            ])
            let events = try await connection.waitFor { $0.count == 3 }
            #expect(
                events == [
                    .content("id: feed:1\n"), .content("id: feed:3\n"),
                    .failed("content filter mismatch: subscription=build-id message=var-subst"),
                ]
            )
            #expect(hub.subscriberCounts()["feed"] == nil)
        }
    }

    @Test func replayedItemsHonourDeliveryFiltersWithTheirStoredMeta() async throws {
        try await withHub { hub in
            try await hub.publish([
                Self.item("1", prev: nil, "id: %I\n", filters: ["build-id"]),
                Self.item("2", prev: "1", "id: %I\n", filters: ["build-id"], meta: ["skip_users": "u1"]),
                Self.item("3", prev: "2", "id: %I\n", filters: ["build-id"], meta: ["require_sub": "elsewhere"]),
                Self.item("4", prev: "3", "id: %I\n", filters: ["build-id"], meta: ["require_sub": "feed"]),
                Self.item("5", prev: "4", "id: %I\n", filters: ["build-id"], meta: ["sender": "u1"]),
            ])
            let connection = RecordingConnection()
            let filters = ["skip-self", "skip-users", "require-sub", "build-id"]
            _ = try await hold(
                hub,
                Self.request(.stream, prevID: "1", filters: filters, meta: Self.eventMeta),
                connection
            )
            try await hub.publish([Self.item("6", prev: "5", "id: %I\n", filters: ["build-id"])])
            _ = try await connection.waitFor { $0.count == 2 }
            #expect(connection.recorded == [.content("id: feed:4\n"), .content("id: feed:6\n")])
        }
    }

    @Test func aLongPollGetsItsBodyThroughVarSubstOrFailsOnAFilterError() async throws {
        try await withHub { hub in
            let good = RecordingConnection()
            let meta = ["name": "Bob Smith"]
            _ = try await hold(hub, Self.request(.response, prevID: nil, filters: ["var-subst"], meta: meta), good)
            try await hub.publish([Self.item("1", prev: nil, "hello %(name)s!\n")])
            let events = try await good.waitFor { !$0.isEmpty }
            #expect(events == [.response(code: 200, headers: [], body: "hello Bob Smith!\n")])

            let bad = RecordingConnection()
            _ = try await hold(hub, Self.request(.response, prevID: nil, filters: ["var-subst"], meta: meta), bad)
            try await hub.publish([Self.item("2", prev: "1", "%(missing)s")])
            let failed = try await bad.waitFor { !$0.isEmpty }
            #expect(failed == [.failed("filter error: No such variable 'missing' at position 10")])
        }
    }
}
