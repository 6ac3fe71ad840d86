import GRIP
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import P8TestSupport
import Testing

@testable import Proxy

/// ``BackendExchange`` against real backends on loopback: failover over refused targets, the head it writes, a
/// connect that completes after its request ended, and the retry on a fresh connection.
@Suite("One backend exchange: connect, failover, retry")
struct BackendExchangeTests {
    /// Records what the exchange tells its owner; lives on the event loop.
    private final class Owner: BackendExchangeDelegate {
        let exchange: BackendExchange
        var events: [String] = []
        /// Whether a close before the response sends the request again on a fresh connection.
        var retries = false
        let done: EventLoopPromise<[String]>

        init(exchange: BackendExchange, done: EventLoopPromise<[String]>) {
            self.exchange = exchange
            self.done = done
        }

        func backendConnected(_ connection: BackendConnection) {
            self.events.append("connected \(connection.key.port)")
            connection.write(.end(nil))
            connection.flush()
        }

        func backendUnavailable(_ error: any Error) {
            self.events.append("unavailable")
            self.done.succeed(self.events)
        }

        func backendResponsePart(_ part: HTTPClientResponsePart) {
            switch part {
            case .head(let head):
                self.events.append("head \(head.status.code)")
            case .body:
                break
            case .end:
                self.exchange.finish(reusingConnection: true)
                self.done.succeed(self.events)
            }
        }

        func backendReadComplete() {}
        func backendWritabilityChanged(isWritable: Bool) {}

        func backendFailed(_ error: any Error) {
            self.backendClosed()
        }

        func backendClosed() {
            self.events.append("closed")
            if self.retries, self.exchange.retryOnFreshConnection(replayable: true) {
                return
            }
            self.done.succeed(self.events)
        }
    }

    /// A loopback port nothing listens on.
    private static func request(_ routeLine: String, uri: String) throws -> BackendRequest {
        let route = try #require(RouteTable.parse(routeLine).table.routes.first)
        var request = BackendRequest(
            clientHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: ["Host": "example.com"]),
            originForm: uri,
            route: route,
            targets: route.targets,
            clientAddress: "192.0.2.7",
            clientIsTLS: false,
            trusted: false
        )
        request.addedHeaders = [("Grip-Last", "a; last-id=1")]
        return request
    }

    private static func builder() throws -> BackendRequestBuilder {
        let configuration = try P8Configuration.parse(text: "", configDirectory: "/tmp", readFile: { _ in nil }).proxy
        return BackendRequestBuilder(proxy: configuration, signatures: GripSignatureCache())
    }

    /// Sends `requests` one after the other through one exchange and pool on one event loop.
    private static func send(
        _ requests: [BackendRequest],
        retries: Bool = false,
        pool: NIOLoopBound<BackendConnectionPool>? = nil,
        on eventLoop: any EventLoop
    ) async throws -> [[String]] {
        let builder = try Self.builder()
        var results: [[String]] = []
        for request in requests {
            let events = try await eventLoop.flatSubmit {
                let pool =
                    pool?.value
                    ?? BackendConnectionPool(
                        eventLoop: eventLoop,
                        descriptors: .unbounded,
                        connectTimeout: .seconds(5),
                        logger: Logger(label: "test")
                    )
                let exchange = BackendExchange(pool: pool, requestBuilder: builder, logger: Logger(label: "test"))
                let owner = Owner(exchange: exchange, done: eventLoop.makePromise())
                owner.retries = retries
                exchange.delegate = owner
                exchange.start(request)
                // The exchange's delegate is weak: the owner lives until its request is over.
                let kept = NIOLoopBound(owner, eventLoop: eventLoop)
                return owner.done.futureResult.map { events in
                    withExtendedLifetime(kept) { events }
                }
            }.get()
            results.append(events)
        }
        return results
    }

    @Test("a refused target fails over to the next; the head carries the rewrite and the added headers")
    func failsOver() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        let refused = try LoopbackPort()
        let request = try Self.request("* 127.0.0.1:\(refused.port) 127.0.0.1:\(backend.port)", uri: "/echo")
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let results = try await Self.send([request], on: eventLoop)
        #expect(results == [["connected \(backend.port)", "head 200"]])
        withExtendedLifetime(refused) {}
        let seen = try #require(backend.requests.first)
        #expect(seen.uri == "/echo")
        #expect(seen.values("Grip-Last") == ["a; last-id=1"])
    }

    @Test("when every target refuses, the owner hears the backend is unavailable")
    func unavailable() async throws {
        let first = try LoopbackPort()
        let second = try LoopbackPort()
        let request = try Self.request("* 127.0.0.1:\(first.port) 127.0.0.1:\(second.port)", uri: "/")
        let results = try await Self.send([request], on: MultiThreadedEventLoopGroup.singleton.next())
        #expect(results == [["unavailable"]])
        withExtendedLifetime((first, second)) {}
    }

    @Test("a connect that completes after its request ended gives its connection to the pool, unused")
    func lateConnectIsPooled() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        let request = try Self.request("* 127.0.0.1:\(backend.port)", uri: "/echo")
        let builder = try Self.builder()
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let (pool, owner) = try await eventLoop.submit {
            let pool = BackendConnectionPool(
                eventLoop: eventLoop,
                descriptors: .unbounded,
                connectTimeout: .seconds(5),
                logger: Logger(label: "test")
            )
            let exchange = BackendExchange(pool: pool, requestBuilder: builder, logger: Logger(label: "test"))
            let owner = Owner(exchange: exchange, done: eventLoop.makePromise())
            exchange.delegate = owner
            exchange.start(request)
            // The client went away while connecting.
            exchange.finish(reusingConnection: false)
            owner.done.succeed([])
            return (NIOLoopBound(pool, eventLoop: eventLoop), NIOLoopBound(owner, eventLoop: eventLoop))
        }.get()
        let pooled = try await eventually { try await eventLoop.submit { pool.value.idleConnectionCount }.get() == 1 }
        #expect(pooled)
        let events = try await eventLoop.submit { owner.value.events }.get()
        #expect(events.isEmpty)
        #expect(backend.requests.isEmpty)
        // The next request uses that connection.
        let results = try await Self.send([request], pool: pool, on: eventLoop)
        #expect(results == [["connected \(backend.port)", "head 200"]])
        #expect(backend.connectionsAccepted == 1)
    }

    @Test("a pooled connection the backend closed is retried once on a fresh connection")
    func retriesOnFreshConnection() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        let request = try Self.request("* 127.0.0.1:\(backend.port)", uri: "/once")
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let pool = try await eventLoop.submit {
            NIOLoopBound(
                BackendConnectionPool(
                    eventLoop: eventLoop,
                    descriptors: .unbounded,
                    connectTimeout: .seconds(5),
                    logger: Logger(label: "test")
                ),
                eventLoop: eventLoop
            )
        }.get()
        let results = try await Self.send([request, request], retries: true, pool: pool, on: eventLoop)
        #expect(results[0] == ["connected \(backend.port)", "head 200"])
        #expect(results[1] == ["connected \(backend.port)", "closed", "connected \(backend.port)", "head 200"])
        #expect(backend.connectionsAccepted == 2)
        // Without the retry, the failure stands.
        let failed = try await Self.send([request], retries: false, pool: pool, on: eventLoop)
        #expect(failed == [["connected \(backend.port)", "closed"]])
    }
}

extension DescriptorBudget {
    /// A budget these tests never reach.
    static let unbounded = DescriptorBudget(limit: 1 << 20, baseline: 0)
}
