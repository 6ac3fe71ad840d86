package import Foundation

/// The record of a held request or WebSocket session, kept so that `p8ctl` can list it and a restarted
/// server can reconcile what the previous one held.
package struct HoldRecord: Sendable, Hashable {
    /// How the client is held.
    package enum Mode: String, Sendable, Hashable {
        /// A long-poll: one response, on the first item or the timeout.
        case response
        /// A stream (chunked or SSE): items as they come.
        case stream
        /// A WebSocket session subscribed to channels.
        case webSocket
    }

    /// A channel of the hold, with the last position delivered on it.
    package struct Channel: Sendable, Hashable {
        /// The channel name.
        package var name: String
        /// The id of the last item delivered (or the `prev-id` the hold started from).
        package var lastId: String?
        /// The sequence of the last item delivered, if known.
        package var lastSequence: Int64?

        package init(name: String, lastId: String? = nil, lastSequence: Int64? = nil) {
            self.name = name
            self.lastId = lastId
            self.lastSequence = lastSequence
        }
    }

    /// The hold's id, unique across instances.
    package var id: String
    /// The process instance that holds the client.
    package var instance: String
    /// How the client is held.
    package var mode: Mode
    /// The id of the route the request came through, if any.
    package var route: String?
    /// The client's address, as the proxy saw it.
    package var clientAddress: String?
    /// The channels and the positions delivered on them.
    package var channels: [Channel]
    /// When the hold started (millisecond precision).
    package var startedAt: Date
    /// When the hold times out, if it does.
    package var timeoutAt: Date?
    /// The keep-alive settings, encoded by the holding side.
    package var keepAlive: Data?
    /// The next/gone links, encoded by the holding side.
    package var links: Data?
    /// The response to send at timeout, encoded by the holding side.
    package var timeoutResponse: Data?
    /// When a later instance found this record at start-up (its holder is gone), else `nil`.
    package var orphanedAt: Date?

    package init(
        id: String,
        instance: String,
        mode: Mode,
        route: String? = nil,
        clientAddress: String? = nil,
        channels: [Channel],
        startedAt: Date = Date(),
        timeoutAt: Date? = nil,
        keepAlive: Data? = nil,
        links: Data? = nil,
        timeoutResponse: Data? = nil,
        orphanedAt: Date? = nil
    ) {
        self.id = id
        self.instance = instance
        self.mode = mode
        self.route = route
        self.clientAddress = clientAddress
        self.channels = channels
        self.startedAt = startedAt
        self.timeoutAt = timeoutAt
        self.keepAlive = keepAlive
        self.links = links
        self.timeoutResponse = timeoutResponse
        self.orphanedAt = orphanedAt
    }
}

/// Where a live hold's client is on its channels now, written over its record's positions by
/// ``ChannelLogStore/enqueueHoldPositions(_:)``: only channels the record has are updated, and a record deleted
/// meanwhile stays deleted.
package struct HoldPositions: Sendable, Hashable {
    package var holdID: String
    package var channels: [HoldRecord.Channel]

    package init(holdID: String, channels: [HoldRecord.Channel]) {
        self.holdID = holdID
        self.channels = channels
    }
}
