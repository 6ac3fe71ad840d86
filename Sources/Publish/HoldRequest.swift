package import Foundation
package import GRIP
import Store

/// What the connection side hands over when a backend tells it to hold a client request.
package struct HoldRequest: Sendable {
    /// A channel of the hold.
    package struct Channel: Sendable, Hashable {
        /// The name as subscribed (route prefix applied).
        package var name: String
        /// The name the backend used (without the route prefix), for `Grip-Last`.
        package var backendName: String
        /// Where the client is: the backend's `prev-id`, or the client's `Last-Event-ID` on a route with
        /// `resume_last_event_id`.
        package var prevID: String?
        /// `filter=` names.
        package var filters: [String]
        /// A hold taken over from an earlier server: where its client is in the log. It stands in for ``prevID``:
        /// the log is read after its sequence (else its id), and the next item's `prev-id` is checked against its
        /// ``HoldPosition/expectedPrevID``.
        package var resume: HoldPosition?

        package init(
            name: String,
            backendName: String,
            prevID: String? = nil,
            filters: [String] = [],
            resume: HoldPosition? = nil
        ) {
            self.name = name
            self.backendName = backendName
            self.prevID = prevID
            self.filters = filters
            self.resume = resume
        }
    }

    /// `response` (long-poll) or `stream`.
    package var mode: Instruct.HoldMode
    /// The channels, in order, at most `connection_subscription_max`.
    package var channels: [Channel]
    /// The response the client sees on timeout (response holds) or first (stream holds); a published
    /// `http-response` is merged over it.
    package var response: Instruct.Response
    /// Subscription meta (`Grip-Set-Meta`), for filters.
    package var meta: [String: String]
    /// Whether the hold has a next link to recover through (stream holds).
    package var hasNextLink: Bool
    /// Whether the response is `text/event-stream`: the reset signal is then an SSE event.
    package var isEventStream: Bool
    /// Whether this request is already a recovery (a re-sent request or a next link): it is not sent back to
    /// the backend again for the same reason.
    package var isRecovery: Bool
    /// For the held-request record: the route id, the client address, the keep-alive as text, and the links.
    package var routeID: String?
    package var clientAddress: String?
    package var keepAliveDescription: String?
    package var links: HoldLinks?
    /// Response holds: when the hold times out.
    package var timeoutAt: Date?
    /// A hold taken over from an earlier server keeps its held-request record: the same id and start time.
    package var record: HoldRecordIdentity?

    package init(
        mode: Instruct.HoldMode,
        channels: [Channel],
        response: Instruct.Response,
        meta: [String: String] = [:],
        hasNextLink: Bool = false,
        isEventStream: Bool = false,
        isRecovery: Bool = false,
        routeID: String? = nil,
        clientAddress: String? = nil,
        keepAliveDescription: String? = nil,
        links: HoldLinks? = nil,
        timeoutAt: Date? = nil,
        record: HoldRecordIdentity? = nil
    ) {
        self.mode = mode
        self.channels = channels
        self.response = response
        self.meta = meta
        self.hasNextLink = hasNextLink
        self.isEventStream = isEventStream
        self.isRecovery = isRecovery
        self.routeID = routeID
        self.clientAddress = clientAddress
        self.keepAliveDescription = keepAliveDescription
        self.links = links
        self.timeoutAt = timeoutAt
        self.record = record
    }
}

/// Which held-request record a hold writes: its id and when the client's hold started.
package struct HoldRecordIdentity: Sendable, Hashable, Codable {
    package var id: String
    package var startedAt: Date

    package init(id: String, startedAt: Date) {
        self.id = id
        self.startedAt = startedAt
    }
}

extension HoldRequest.Channel {
    /// Where the log is read from when the hold starts: a taken-over hold's sequence (else its last id), the
    /// `prev-id`; nil to hold live.
    var logPosition: Cursor? {
        if let resume = self.resume {
            return resume.sequence.map(Cursor.sequence) ?? resume.currentID.map(Cursor.id)
        }
        return self.prevID.map(Cursor.id)
    }
}

/// How a hold starts, decided once the channels' positions are checked against the log.
package enum HoldDecision: Sendable {
    /// Hold. The connection sends what a hold sends first (a stream's head and initial body; nothing for a
    /// long-poll), with a `P8-Reset` header naming `resetChannels` when there are any, then calls
    /// ``HoldSession/activate()``, which delivers what the client missed and then live items.
    case hold(HoldSession, resetChannels: [String])
    /// A long-poll whose client is behind and cannot be resumed, and there is no backend recovery left: answer
    /// at once with the hold's response and a `P8-Reset` header naming these channels.
    case reset(channels: [String])
    /// The client is behind what the log can resume and the backend can fill the gap: re-send the request
    /// (long-poll) or fetch the next link (stream) with these `Grip-Last` headers.
    case recover([GripLast])
}

/// A hold's `Grip-Link`s, resolved to absolute URIs, as its held-request record keeps them (JSON): what a later
/// process needs to send the gone callback a server owed when it died.
package struct HoldLinks: Codable, Sendable, Hashable {
    /// `rel=next`.
    package var next: String?
    /// `rel=gone`: `POST`ed to when the client goes away.
    package var gone: String?
    /// Whether the gone link goes through the hold's route (it names the client request's own host), rather than
    /// straight to the host it names.
    package var goneThroughRoute: Bool

    package init(next: String? = nil, gone: String? = nil, goneThroughRoute: Bool = false) {
        self.next = next
        self.gone = gone
        self.goneThroughRoute = goneThroughRoute
    }

    /// The JSON kept in the record.
    package var encoded: Data {
        // Two optional strings and a Bool always encode.
        (try? JSONEncoder().encode(self)) ?? Data()
    }

    /// The links a record keeps; nil for none, or for the text an earlier version wrote.
    package init?(decoding data: Data?) {
        guard let data, let links = try? JSONDecoder().decode(HoldLinks.self, from: data) else { return nil }
        self = links
    }
}

/// Where a held client is on one channel, as a server that takes the client over needs it: the log sequence of the
/// last item it was sent (or where it joined the log), that item's id, and the id the next item's `prev-id` must
/// equal when its position is checked (grip-spec §5.2).
package struct HoldPosition: Codable, Sendable, Hashable {
    /// The id the next item's `prev-id` must equal; nil when prev-ids are not checked.
    package var expectedPrevID: String?
    /// The id of the last item sent (the backend's `prev-id` before any), for `build-id`.
    package var currentID: String?
    /// The log sequence the client is at; nil while unknown (the position is then ``currentID``).
    package var sequence: Int64?

    package init(expectedPrevID: String?, currentID: String?, sequence: Int64?) {
        self.expectedPrevID = expectedPrevID
        self.currentID = currentID
        self.sequence = sequence
    }
}
