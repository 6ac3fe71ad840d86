import Foundation
import GRIP
import Logging
import NIOHTTP1
import Publish

/// The HTTP control API's behaviour (grip-spec §4.2), apart from the wire: which endpoint a request is for, content
/// negotiation, authentication, and what each endpoint answers. ``ControlRequestHandler`` reads requests and writes
/// the responses.
///
/// Endpoints: `/` (`Pushpin API`, any method), `POST /publish`, `POST /recover`, and P-8's `GET /stats` (counters and
/// live subscribers, for `p8ctl`). A single trailing `/` is ignored; a query string makes a path unknown.
struct ControlAPI: Sendable {
    /// The endpoints; `root` is `/`.
    enum Endpoint: Sendable {
        case root, publish, recover, stats
        /// P-8's status page (`GET /status`) and its live stream (`GET /status/events`).
        case status, statusEvents
    }

    /// What to do with a request, decided from its head.
    enum Plan: Sendable {
        /// Answer without reading the body further.
        case respond(ControlResponse)
        /// Read the body, then call ``ControlAPI/respond(to:body:json:completion:)``.
        case read(Endpoint, json: Bool)
    }

    let hub: PublishHub
    /// `push_in_http_key`: when set, `POST` requests and `GET /stats` need a Bearer JWT signed with it.
    let publishKey: SigningKey?
    let logger: Logger

    /// Routes a request head: 406 for an unacceptable `Accept`, 404 for an unknown path, 405 for a wrong method
    /// (with `Allow`), 401 when authentication is required and fails. Errors are `text/plain` whatever `Accept`
    /// says, as Pushpin's are; only success messages follow it.
    func plan(_ head: HTTPRequestHead) -> Plan {
        // The status page and its stream answer HTML and SSE whatever `Accept` says (a browser's EventSource
        // asks for text/event-stream).
        let isStatus = head.uri == "/status" || head.uri.hasPrefix("/status/") || head.uri.hasPrefix("/status?")
        guard let json = isStatus ? false : Self.negotiate(head.headers[canonicalForm: "accept"]) else {
            return .respond(
                .text(406, "Not Acceptable. Supported formats are text/plain and application/json.")
            )
        }
        var path = head.uri
        // The status page passes a `token` in its query (an `EventSource` cannot send headers).
        var queryToken: String?
        if path.hasPrefix("/status"), let query = path.firstIndex(of: "?") {
            queryToken = Self.token(inQuery: path[path.index(after: query)...])
            path = String(path[..<query])
        }
        if path.count > 1, path.hasSuffix("/") {
            path.removeLast()
        }
        // `/` answers any method, as Pushpin's does.
        let routes: [String: (Endpoint, HTTPMethod?)] = [
            "/": (.root, nil), "/publish": (.publish, .POST), "/recover": (.recover, .POST), "/stats": (.stats, .GET),
            "/status": (.status, .GET), "/status/events": (.statusEvents, .GET),
        ]
        guard let route = routes[path] else {
            return .respond(.text(404, "Not Found"))
        }
        let (endpoint, method) = route
        if let method, head.method != method {
            return .respond(
                .text(405, "Method not allowed: \(head.method.rawValue).", headers: [("Allow", method.rawValue)])
            )
        }
        var headers = head.headers
        if let queryToken, !headers.contains(name: "authorization") {
            headers.add(name: "Authorization", value: "Bearer \(queryToken)")
        }
        if endpoint != .root, let refusal = self.authenticate(headers) {
            return .respond(refusal)
        }
        return .read(endpoint, json: json)
    }

    /// Answers a request whose body has been read, by calling `completion` once, on any thread. Publishing
    /// answers only once the items are committed.
    func respond(
        to endpoint: Endpoint,
        body: [UInt8],
        json: Bool,
        completion: @escaping @Sendable (ControlResponse) -> Void
    ) {
        switch endpoint {
        case .root:
            completion(.text(200, "Pushpin API"))
        case .status:
            completion(
                ControlResponse(
                    status: 200,
                    contentType: "text/html; charset=utf-8",
                    headers: [("Cache-Control", "no-store")],
                    body: Array(StatusPage.html.utf8)
                )
            )
        case .statusEvents:
            // Streamed by ``ControlRequestHandler``; never answered here.
            completion(.text(500, "Internal error."))
        case .publish:
            self.publish(body: body, json: json, completion: completion)
        case .recover:
            let hub = self.hub
            Task {
                await hub.recover()
                completion(.message("Updated", json: json))
            }
        case .stats:
            completion(.json(200, self.stats()))
        }
    }

    private func publish(body: [UInt8], json: Bool, completion: @escaping @Sendable (ControlResponse) -> Void) {
        let items: [PublishItem]
        do {
            items = try PublishRequest.parse(body: body)
        } catch {
            self.logger.debug("publish request refused", metadata: ["p8.publish.error": "\(error)"])
            completion(.text(400, Self.pushpinText(error)))
            return
        }
        let logger = self.logger
        self.hub.publish(items) { result in
            switch result {
            case .success:
                completion(.message("Published", json: json))
            case .failure(let error):
                logger.warning(
                    "publish failed: the items could not be committed",
                    metadata: ["p8.publish.items": "\(items.count)", "error": "\(error)"]
                )
                completion(Self.publishFailure(error))
            }
        }
    }

    /// 503 with `Retry-After` when the database is out of reach for now, else 500; nothing was published.
    private static func publishFailure(_ error: any Error) -> ControlResponse {
        if PublishHub.isStoreUnavailable(error) {
            return .text(
                503,
                "Publish failed: the database cannot be reached; nothing was published. Retry later.",
                headers: [("Retry-After", "1")]
            )
        }
        return .text(500, "Publish failed: the items could not be stored; nothing was published.")
    }

    /// `{"counters": {name: n}, "channels": {channel: {"subscribers": n}}, "store": {"path", "epoch"}}`.
    ///
    /// The store member lets `p8ctl` tell whether the server it reached uses the database it is reading.
    private func stats() -> JSONValue {
        var counters: [String: JSONValue] = [:]
        for (name, value) in self.hub.counters.snapshot {
            counters[name] = .int(value)
        }
        let channels = self.hub.subscriberCounts().mapValues { count in
            JSONValue.object(["subscribers": .int(count)])
        }
        return .object([
            "counters": .object(counters),
            "channels": .object(channels),
            "store": .object(["path": .string(self.hub.database.path), "epoch": .string(self.hub.database.epoch)]),
        ])
    }

    /// Pushpin's exact 400 texts: `Body is not valid JSON.`, `Invalid format.`, `Invalid format: <detail>`.
    static func pushpinText(_ error: PublishError) -> String {
        switch error.code {
        case .invalidJSON:
            return "Body is not valid JSON."
        case .notAnObject:
            return "Invalid format."
        case .missingItems, .invalidItems, .invalidItem, .forbiddenHeader:
            return "Invalid format: \(error.message)"
        }
    }

    // MARK: - Negotiation and authentication

    /// The `token` parameter of a query string, percent-decoded.
    static func token(inQuery query: Substring) -> String? {
        for item in query.split(separator: "&") where item.hasPrefix("token=") {
            return String(item.dropFirst("token=".count)).removingPercentEncoding
        }
        return nil
    }

    /// Pushpin's `Accept` rule: the last acceptable entry wins; `text/plain`, `text/*`, `*/*`, `*` mean text and
    /// `application/json`, `application/*` mean JSON.
    ///
    /// - Returns: whether to answer JSON, or nil when nothing acceptable is listed (406). No header means text.
    static func negotiate(_ values: [Substring]) -> Bool? {
        let entries = values.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !entries.isEmpty else {
            return false
        }
        var json: Bool?
        for entry in entries {
            let type = entry.split(separator: ";", maxSplits: 1).first.map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            }
            switch type {
            case "text/plain", "text/*", "*/*", "*":
                json = false
            case "application/json", "application/*":
                json = true
            default:
                continue
            }
        }
        return json
    }

    /// Checks `Authorization: Bearer <JWT>` against the publish key; nil when the request may go on.
    private func authenticate(_ headers: HTTPHeaders) -> ControlResponse? {
        guard let key = self.publishKey else {
            return nil
        }
        let challenge = [(name: "WWW-Authenticate", value: "Bearer")]
        let values = headers["Authorization"]
        guard values.count == 1, let value = values.first else {
            return .text(
                401,
                "Authorization required: send 'Authorization: Bearer <token>', an HS256 JWT signed with the "
                    + "publish key (push_in_http_key).",
                headers: challenge
            )
        }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let now = Int(Date().timeIntervalSince1970)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
            GripSignature.verify(parts[1].trimmingCharacters(in: .whitespaces), key: key, now: now) != nil
        else {
            return .text(
                401,
                "Invalid token: the Bearer token must be an unexpired HS256 JWT signed with the publish key.",
                headers: challenge
            )
        }
        return nil
    }
}
