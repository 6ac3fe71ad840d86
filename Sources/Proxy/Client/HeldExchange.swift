import Foundation
import GRIP
import NIOCore
import NIOHTTP1
import Publish

/// A held client connection as data (grip-spec §3.4-3.6): which hold, on which channels from which positions, and
/// what the client has been sent. It is everything a process needs, besides the socket, to take the client over
/// (it crosses the hand-over socket as JSON).
struct HeldExchangeRecord: Equatable, Sendable {
    /// The client's request (for JSON-P, the request its parameters describe), and the route it took (its id
    /// when the route has one).
    var requestHead: HTTPRequestHead
    var routeID: String?
    /// The instructions the hold follows: its mode, channels with their `prev-id`s (the positions it started
    /// from), response, keep-alive and next link.
    var instruct: Instruct
    /// Where the client is now on each channel (by the name the hub knows it, with the route's prefix); empty
    /// until the hub decided to hold.
    var positions: [String: HoldPosition]
    /// The next and gone links, resolved, and whether each goes through the hold's route.
    var nextLink: URL?
    var nextLinkThroughRoute: Bool
    var goneLink: URL?
    var goneLinkThroughRoute: Bool
    /// Counts the exchange's holds (a next link's answer may hold again).
    var generation: Int
    /// Whether the response head has been written (a stream's, once for the client's response).
    var responseHeadWritten: Bool
    /// Stream body bytes written to the client by this hold (initial body, content, keep-alives).
    var bodyBytesWritten: Int
    /// Whether the request was complete (the client may carry another after a long-poll's answer).
    var requestComplete: Bool
    /// Long-polls: when the hold times out.
    var timeoutAt: Date?
    /// The hold's held-request record, which the server taking it over keeps (nil from a server before it).
    var record: HoldRecordIdentity?
}

extension HeldExchangeRecord: Codable {
    private enum CodingKeys: String, CodingKey {
        case request, routeID, instruct, positions, nextLink, nextLinkThroughRoute, goneLink, goneLinkThroughRoute
        case generation, responseHeadWritten, bodyBytesWritten, requestComplete, timeoutAt, record
    }

    init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        self.requestHead = try values.decode(RequestHeadRecord.self, forKey: .request).head
        self.routeID = try values.decodeIfPresent(String.self, forKey: .routeID)
        self.instruct = try values.decode(Instruct.self, forKey: .instruct)
        self.positions = try values.decode([String: HoldPosition].self, forKey: .positions)
        self.nextLink = try values.decodeIfPresent(URL.self, forKey: .nextLink)
        self.nextLinkThroughRoute = try values.decode(Bool.self, forKey: .nextLinkThroughRoute)
        self.goneLink = try values.decodeIfPresent(URL.self, forKey: .goneLink)
        self.goneLinkThroughRoute = try values.decode(Bool.self, forKey: .goneLinkThroughRoute)
        self.generation = try values.decode(Int.self, forKey: .generation)
        self.responseHeadWritten = try values.decode(Bool.self, forKey: .responseHeadWritten)
        self.bodyBytesWritten = try values.decode(Int.self, forKey: .bodyBytesWritten)
        self.requestComplete = try values.decode(Bool.self, forKey: .requestComplete)
        self.timeoutAt = try values.decodeIfPresent(Date.self, forKey: .timeoutAt)
        self.record = try values.decodeIfPresent(HoldRecordIdentity.self, forKey: .record)
    }

    func encode(to encoder: any Encoder) throws {
        var values = encoder.container(keyedBy: CodingKeys.self)
        try values.encode(RequestHeadRecord(self.requestHead), forKey: .request)
        try values.encodeIfPresent(self.routeID, forKey: .routeID)
        try values.encode(self.instruct, forKey: .instruct)
        try values.encode(self.positions, forKey: .positions)
        try values.encodeIfPresent(self.nextLink, forKey: .nextLink)
        try values.encode(self.nextLinkThroughRoute, forKey: .nextLinkThroughRoute)
        try values.encodeIfPresent(self.goneLink, forKey: .goneLink)
        try values.encode(self.goneLinkThroughRoute, forKey: .goneLinkThroughRoute)
        try values.encode(self.generation, forKey: .generation)
        try values.encode(self.responseHeadWritten, forKey: .responseHeadWritten)
        try values.encode(self.bodyBytesWritten, forKey: .bodyBytesWritten)
        try values.encode(self.requestComplete, forKey: .requestComplete)
        try values.encodeIfPresent(self.timeoutAt, forKey: .timeoutAt)
        try values.encodeIfPresent(self.record, forKey: .record)
    }
}

/// A client's request head as a hand-over carries it (NIO's `HTTPRequestHead` is not `Codable`).
struct RequestHeadRecord: Codable, Sendable {
    var method: String
    var uri: String
    var version: [Int]
    var headers: [HeaderField]

    init(_ head: HTTPRequestHead) {
        self.method = head.method.rawValue
        self.uri = head.uri
        self.version = [head.version.major, head.version.minor]
        self.headers = head.headers.map { HeaderField(name: $0.name, value: $0.value) }
    }

    /// The head as the client sent it, in HTTP/1.x.
    var encoded: [UInt8] {
        var text =
            "\(self.method) \(self.uri) HTTP/\(self.version.first ?? 1).\(self.version.dropFirst().first ?? 1)\r\n"
        for header in self.headers {
            text += "\(header.name): \(header.value)\r\n"
        }
        text += "\r\n"
        return Array(text.utf8)
    }

    var head: HTTPRequestHead {
        HTTPRequestHead(
            version: HTTPVersion(major: self.version.first ?? 1, minor: self.version.dropFirst().first ?? 1),
            method: HTTPMethod(rawValue: self.method),
            uri: self.uri,
            headers: HTTPHeaders(self.headers.map { ($0.name, $0.value) })
        )
    }
}

/// What a held exchange decides without its timers: when a slow stream client is dropped, when keep-alives and
/// next-link retries come.
struct HoldPacing: Hashable, Sendable {
    /// Stream writes, and bytes, a client may leave unread beyond NIO's buffer before it is disconnected (a slow
    /// client never holds back the others, nor grows the server's memory; it resumes from its last id when it
    /// reconnects).
    static let maxWritesWhileUnwritable = 1000
    static let maxBytesWhileUnwritable = 2 * 1024 * 1024
    /// Attempts at a next link before the stream ends (grip-spec §3.6).
    static let maxLinkAttempts = 5

    /// Stream writes made, and bytes written, while the client was not taking data.
    private(set) var writesWhileUnwritable = 0
    private(set) var bytesWhileUnwritable = 0
    /// Stream body bytes written in all.
    private(set) var bytesWritten = 0

    /// A stream write of `bytes`, after which the client is `writable` or not.
    ///
    /// - Returns: true when the client is too slow and must be disconnected.
    mutating func wrote(_ bytes: Int, clientWritable writable: Bool) -> Bool {
        self.bytesWritten += bytes
        guard !writable else {
            self.writesWhileUnwritable = 0
            self.bytesWhileUnwritable = 0
            return false
        }
        self.writesWhileUnwritable += 1
        self.bytesWhileUnwritable += bytes
        return self.writesWhileUnwritable > Self.maxWritesWhileUnwritable
            || self.bytesWhileUnwritable > Self.maxBytesWhileUnwritable
    }

    /// A write that does not count toward a slow client (a stream's initial body).
    mutating func wrote(_ bytes: Int) {
        self.bytesWritten += bytes
    }

    /// The delay of the next keep-alive: like Pushpin, each period shortened by up to a second (a tenth of it at
    /// most), so that many streams do not wake together. `jitter` is in 0..<1.
    static func keepAliveDelay(periodSeconds: Int, jitter: Double) -> TimeAmount {
        let period = Int64(periodSeconds) * 1000
        let spread = min(1000, period / 10 + 1)
        return .milliseconds(period - Int64(Double(spread) * jitter))
    }

    /// The delay before retrying a next link after `attempts` failures (1, 2, 4, 8, 16 s, plus up to a second:
    /// `jitter` is in 0..<1), or nil when the stream ends instead.
    static func linkRetryDelay(attempts: Int, jitter: Double) -> TimeAmount? {
        guard attempts < Self.maxLinkAttempts + 1 else { return nil }
        return .milliseconds((1 << Int64(attempts - 1)) * 1000 + Int64(1000 * jitter))
    }
}

/// The state of an exchange while the publish side holds its client: its data, and the timers and session that
/// carry it out.
final class HeldExchange {
    let generation: Int
    let instruct: Instruct
    /// The links, when the hold has any (most have none: boxed, so that a hold without pays a pointer).
    private let links: Links?

    private final class Links {
        let next: NextLink?
        let gone: LinkTarget?

        init(next: NextLink?, gone: LinkTarget?) {
            self.next = next
            self.gone = gone
        }
    }

    /// The next link, resolved.
    var nextLink: NextLink? { self.links?.next }
    /// The gone link, resolved: where to `POST` when the client goes away while held.
    var goneLink: LinkTarget? { self.links?.gone }
    /// The publish side's session, once the hub decided to hold.
    var session: HoldSession?
    /// Response holds: the timeout, and when it fires.
    var timeout: Scheduled<Void>?
    var timeoutAt: Date?
    /// Stream holds: the keep-alive timer and the next-link timer.
    var keepAlive: Scheduled<Void>?
    var linkTimer: Scheduled<Void>?
    /// A next link's retry after a failed attempt.
    var linkRetry: Scheduled<Void>?
    /// Slow-client counts and bytes written.
    var pacing = HoldPacing()
    /// Whether the metrics count this hold among the held connections.
    var countedAsHeld = false

    init(generation: Int, instruct: Instruct, nextLink: NextLink?, goneLink: LinkTarget?) {
        self.generation = generation
        self.instruct = instruct
        self.links = nextLink == nil && goneLink == nil ? nil : Links(next: nextLink, gone: goneLink)
    }

    func cancelTimers() {
        self.timeout?.cancel()
        self.keepAlive?.cancel()
        self.linkTimer?.cancel()
        self.linkRetry?.cancel()
    }
}

@available(*, unavailable)
extension HeldExchange: Sendable {}
