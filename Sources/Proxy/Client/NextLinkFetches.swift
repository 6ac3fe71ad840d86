import Foundation
import GRIP
import NIOCore
import NIOHTTP1
import Publish
import Synchronization

/// Next-link requests in flight, so that concurrent ones for the same link share one backend request (grip-spec
/// §3.6, as Pushpin collapses them). The key is the route, the full URI (query included: Pushpin's key ignored
/// the query, so that sessions got each other's channels, fastly/pushpin#47692) and the `Grip-Last` headers: only
/// requests the backend cannot tell apart share an answer.
///
/// The first exchange to ask makes the request (the leader); others that ask before its response head arrives
/// follow it: they get every part of the response, on their own event loop, as if from their own backend
/// connection, and act on it themselves (its body goes to their stream, its instructions start their next hold).
/// If the leader's request fails, or its client leaves, its followers see the connection close and retry on
/// their own.
final class NextLinkFetches: Sendable {
    struct Key: Hashable, Sendable {
        var routeID: String
        var uri: String
        var gripLast: [String]
    }

    /// One shared request: joinable until its response head arrives.
    final class Fetch: Sendable {
        private let followers = Mutex<[Follower]?>([])

        /// Adds a follower; false once the response has started.
        fileprivate func join(_ follower: Follower) -> Bool {
            self.followers.withLock { followers in
                guard followers != nil else { return false }
                followers?.append(follower)
                return true
            }
        }

        /// Closes the fetch to new followers and returns those it has.
        fileprivate func close() -> [Follower] {
            self.followers.withLock { followers in
                defer { followers = nil }
                return followers ?? []
            }
        }
    }

    /// An exchange that follows another's request.
    struct Follower: Sendable {
        private let exchange: NIOLoopBound<ProxyExchange>
        private let eventLoop: any EventLoop

        init(_ exchange: ProxyExchange) {
            self.exchange = NIOLoopBound(exchange, eventLoop: exchange.eventLoop)
            self.eventLoop = exchange.eventLoop
        }

        func receive(_ part: HTTPClientResponsePart) {
            let exchange = self.exchange
            self.eventLoop.execute { exchange.value.backendResponsePart(part) }
        }

        func readComplete() {
            let exchange = self.exchange
            self.eventLoop.execute { exchange.value.backendReadComplete() }
        }

        /// The leader's request ended before its response did.
        func abandon() {
            let exchange = self.exchange
            self.eventLoop.execute { exchange.value.backendClosed() }
        }
    }

    private let fetches = Mutex<[Key: Fetch]>([:])
    /// Where shared requests are counted (`next_links_shared`).
    private let counters: PublishCounters

    init(counters: PublishCounters) {
        self.counters = counters
    }

    /// What an exchange asking for a link does.
    enum Role {
        /// Make the request, and hand its response to the fetch's followers.
        case lead(Key, Fetch)
        /// Wait for the leader's response.
        case follow
    }

    /// Joins the request in flight for the same link on `route` with the same `Grip-Last`, or registers a new
    /// one that `exchange` leads.
    func join(route: Route, link: NextLink, gripLast: [GripLast], _ exchange: ProxyExchange) -> Role {
        let key = Key(routeID: route.id, uri: link.uri.absoluteString, gripLast: gripLast.map(\.headerValue).sorted())
        let follower = Follower(exchange)
        let role = self.fetches.withLock { fetches -> Role in
            if let fetch = fetches[key], fetch.join(follower) {
                return .follow
            }
            let fetch = Fetch()
            fetches[key] = fetch
            return .lead(key, fetch)
        }
        if case .follow = role {
            self.counters.nextLinksShared.add(1, ordering: .relaxed)
        }
        return role
    }

    /// The leader's response started (or its request ended): no more followers; returns those it has.
    func start(_ key: Key, _ fetch: Fetch) -> [Follower] {
        self.fetches.withLock { fetches in
            if fetches[key] === fetch {
                fetches[key] = nil
            }
        }
        return fetch.close()
    }
}
