import Foundation
import P8TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Restarts at the descriptor limit (README "What the proxy does"): what a restart passes is counted once, and a
/// WebSocket message held back by the limit goes over to the new server.
extension HandoverProcessTests {
    @Test("the sockets a restart hands over count once against the new server's descriptor budget")
    func handedOverSocketsCountOnce() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(
                arguments: ["--route", "* 127.0.0.1:\(backend.port)"],
                descriptorLimit: 256
            )
            let ports = try await p8.readyPorts()
            let first = try await RunnerStatusFile.readyServer(of: p8)
            // Most of the budget (256 less a reserve of 64) in held long-polls, one channel each.
            var held: [RawHTTPConnection] = []
            for index in 0..<120 {
                let connection = try await RawHTTPConnection.connect(port: ports.http)
                try await connection.send(Self.request(Self.longPollPath("fd\(index)")))
                held.append(connection)
            }
            try await Self.waitForSubscribers(ports.publish, (0..<120).map { "fd\($0)" })
            p8.signal(SIGUSR2)
            _ = try await RunnerStatusFile.restarted(p8, from: first)
            #expect(p8.stderrText.contains("120 handed over"))
            // Counted twice (open when the new server started, and again as taken over), they would leave no
            // descriptor for this request's backend connection.
            let client = try await RawHTTPConnection.connect(port: ports.http)
            try await client.send(Self.request("/plain?body=after"))
            #expect(try await client.readResponse().text == "after")
            await client.close()
            for connection in held {
                await connection.close()
            }
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("a WebSocket message still waiting for a backend connection when the settling time ends goes over")
    func unsentWebSocketMessageGoesOver() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(
                arguments: ["--route", "* 127.0.0.1:\(backend.port),over_http"],
                descriptorLimit: 256
            )
            let ports = try await p8.readyPorts()
            let first = try await RunnerStatusFile.readyServer(of: p8)
            // `oneshot`: the backend closes its connection after each answer, so the next message needs a new one.
            let socket = try await RawWebSocket.connect(port: ports.http, path: "/ws?channel=wq&echo&oneshot")
            #expect(socket.response.status == 101)
            try await Self.waitForSubscribers(ports.publish, ["wq"])
            #expect(try await eventually { backend.openConnections == 0 })
            // Idle clients take the rest of the descriptor budget (p8 closes those past it).
            var idle: [RawHTTPConnection] = []
            for _ in 0..<200 {
                idle.append(try await RawHTTPConnection.connect(port: ports.http))
            }
            try await idle[199].waitForClose()
            // No descriptor for the message's backend request: it waits, through the settling time.
            try await socket.send(text: "queued")
            #expect(
                try await eventually {
                    p8.stderrText.contains("near the descriptor limit: backend requests wait for a connection")
                }
            )
            p8.signal(SIGUSR2)
            _ = try await RunnerStatusFile.restarted(p8, from: first)
            #expect(p8.stderrText.contains("1 sent again"))
            for connection in idle {
                await connection.close()
            }
            // The new server sends it once descriptors are free, on the same WebSocket.
            #expect(try await socket.readMessage().text == "echo:queued")
            #expect(backend.requests.count { String(decoding: $0.body, as: UTF8.self).contains("queued") } == 1)
            await socket.close()
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }
}
