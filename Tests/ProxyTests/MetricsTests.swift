import Foundation
import GRIP
import Testing

/// The Prometheus endpoint end to end: a real P-8 with `prometheus_port`, real requests through the proxy to the
/// test backend, real publishes; the exposition scraped over HTTP and parsed.
@Suite struct MetricsTests {
    static let config = "[proxy]\nprometheus_port=127.0.0.1:0\nprometheus_prefix=pp_"

    @Test func pushpinsSeriesAndP8sOwnAreExposedWithHelpAndType() async throws {
        try await withRunningP8Server(config: Self.config) { p8 in
            let scrape = try await Scrape.take(p8)
            for (name, type) in [
                ("pp_request_received", "counter"), ("pp_connection_connected", "gauge"),
                ("pp_connection_minute", "counter"), ("pp_message_received", "counter"),
                ("pp_message_sent", "counter"), ("pp_p8_held_connections", "gauge"),
                ("pp_p8_deliveries_total", "counter"), ("pp_p8_publish_items_received_total", "counter"),
                ("pp_p8_publish_items_committed_total", "counter"),
                ("pp_p8_publish_items_deduplicated_total", "counter"),
                ("pp_p8_publish_commit_seconds", "histogram"), ("pp_p8_publish_delivery_seconds", "histogram"),
                ("pp_p8_resumes_total", "counter"), ("pp_p8_store_reads_total", "counter"),
                ("pp_client_recover", "counter"), ("pp_p8_backend_recoveries_total", "counter"),
                ("pp_p8_slow_clients_disconnected_total", "counter"), ("pp_p8_websocket_sessions", "gauge"),
                ("pp_p8_store_bytes", "gauge"), ("pp_p8_store_items", "gauge"), ("pp_p8_store_channels", "gauge"),
                ("pp_p8_retention_removed_total", "counter"), ("pp_p8_sequencer_timeouts_total", "counter"),
            ] {
                #expect(scrape.types[name] == type, "\(name)")
                #expect(scrape.help[name]?.isEmpty == false, "\(name)")
            }
            #expect(scrape.value("pp_request_received") == 0)
            #expect(scrape.value("pp_p8_held_connections", ["mode": "stream"]) == 0)
        }
    }

    @Test func valuesMoveWithRequestsHoldsAndPublishes() async throws {
        try await withTestBackend { backend in
            try await withRunningP8Server(routes: ["*,id=main 127.0.0.1:\(backend.port)"], config: Self.config) { p8 in
                let plain = try await RawHTTPConnection.connect(port: p8.httpPort)
                try await plain.send("GET /plain?status=404 HTTP/1.1\r\nHost: example.com\r\n\r\n")
                #expect(try await plain.readResponse().status == 404)
                let stream = try await RawHTTPConnection.connect(port: p8.httpPort)
                try await stream.send(
                    "GET /plain?header=Grip-Hold:stream&header=Grip-Channel:m1&body=open%0A HTTP/1.1\r\n"
                        + "Host: example.com\r\n\r\n"
                )
                _ = try await stream.readHead()
                let held = try await Scrape.waitFor(p8) { $0.value("pp_p8_held_connections", ["mode": "stream"]) == 1 }
                #expect(held.value("pp_request_received") == 2)
                #expect(held.value("pp_connection_connected") == 2)
                #expect(held.value("pp_p8_backend_requests_total", ["route": "main", "class": "4xx"]) == 1)
                #expect(held.value("pp_p8_backend_requests_total", ["route": "main", "class": "2xx"]) == 1)
                #expect(held.value("pp_p8_backend_request_seconds_count", ["route": "main"]) == 2)

                let item = #"{"channel": "m1", "id": "a", "formats": {"http-stream": {"content": "one\n"}}}"#
                try await publishItems(p8, #"{"items": [\#(item)]}"#)
                try await publishItems(p8, #"{"items": [\#(item)]}"#)
                _ = try await stream.readChunks(until: "one\n", timeout: .seconds(15))
                let published = try await Scrape.waitFor(p8) { $0.value("pp_message_sent") == 1 }
                #expect(published.value("pp_message_received") == 2)
                #expect(published.value("pp_p8_publish_items_received_total") == 2)
                #expect(published.value("pp_p8_publish_items_committed_total") == 1)
                #expect(published.value("pp_p8_publish_items_deduplicated_total") == 1)
                #expect(published.value("pp_p8_deliveries_total", ["mode": "stream"]) == 1)
                #expect(published.value("pp_p8_publish_commit_seconds_count") == 2)
                #expect(published.value("pp_p8_publish_delivery_seconds_count") == 1)
                #expect(published.value("pp_p8_store_items") == 1)
                #expect(published.value("pp_p8_store_channels") == 1)
                #expect((published.value("pp_p8_store_bytes") ?? 0) > 0)

                await stream.close()
                let closed = try await Scrape.waitFor(p8) {
                    $0.value("pp_p8_held_connections", ["mode": "stream"]) == 0
                }
                #expect(closed.value("pp_connection_connected") == 1)
            }
        }
    }

    @Test func onlyGETAndHEADAreServed() async throws {
        try await withRunningP8Server(config: Self.config) { p8 in
            let port = try #require(p8.metricsPort)
            let connection = try await RawHTTPConnection.connect(port: port)
            try await connection.send("POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
            #expect(try await connection.readResponse().status == 405)
        }
    }
}

/// One parsed scrape: `# HELP` and `# TYPE` by name, samples by name and labels.
private struct Scrape {
    var help: [String: String] = [:]
    var types: [String: String] = [:]
    var samples: [String: Double] = [:]

    static func take(_ p8: RunningP8) async throws -> Scrape {
        let port = try #require(p8.metricsPort)
        let connection = try await RawHTTPConnection.connect(port: port)
        try await connection.send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try await connection.readResponse()
        await connection.close()
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        return Scrape(text: response.text)
    }

    /// Scrapes until `condition` holds (15 s at most), returning that scrape.
    static func waitFor(_ p8: RunningP8, _ condition: (Scrape) -> Bool) async throws -> Scrape {
        let deadline = ContinuousClock.now + .seconds(15)
        var scrape = try await Self.take(p8)
        while !condition(scrape), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            scrape = try await Self.take(p8)
        }
        #expect(condition(scrape), "condition never held; last scrape:\n\(scrape.samples)")
        return scrape
    }

    init(text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                let name = rest.prefix { $0 != " " }
                self.help[String(name)] = String(rest.dropFirst(name.count + 1))
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                self.types[String(parts[0])] = String(parts[1])
            } else if let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) {
                self.samples[String(line[..<space])] = value
            }
        }
    }

    /// The sample of `name` whose labels are exactly `labels` (in any order).
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        for (key, value) in self.samples {
            let brace = key.firstIndex(of: "{")
            guard key[..<(brace ?? key.endIndex)] == name else { continue }
            var found: [String: String] = [:]
            if let brace {
                for pair in key[key.index(after: brace)..<key.index(before: key.endIndex)].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    found[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            }
            if found == labels {
                return value
            }
        }
        return nil
    }
}

private func publishItems(_ p8: RunningP8, _ json: String) async throws {
    let connection = try await RawHTTPConnection.connect(port: p8.publishPort)
    try await connection.send(
        "POST /publish/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
    )
    let response = try await connection.readResponse()
    await connection.close()
    #expect(response.status == 200, "\(response.text)")
}
