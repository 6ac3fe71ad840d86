/// One line of the routes file: a condition, route options and at least one target (grip-spec §2.1-§2.3).
package struct Route: Sendable, Hashable {
    /// The condition's domain.
    package enum Domain: Sendable, Hashable {
        /// `*`: every host without a bucket of its own.
        case any
        /// An exact host (lowercased; no partial wildcards).
        case host(String)
        /// Empty: the route is reachable only by id (`Pushpin-Route`).
        case none
    }

    /// The `proto=` condition.
    package enum Proto: String, Sendable, Hashable {
        /// Plain HTTP requests only.
        case http
        /// WebSocket handshakes only.
        case ws
    }

    /// A `header=Name:Value` option: set (or with an empty value remove) a request header toward the backend.
    package struct Header: Sendable, Hashable {
        /// The header name as written.
        package var name: String
        /// The value, leading spaces trimmed; empty means "remove the header".
        package var value: String

        /// Creates a header option.
        package init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The explicit `id=`, or one built from the condition (`domain,proto,ssl,path_beg` with `*` for unset).
    package var id: String
    /// Whether ``id`` was written in the file.
    package var hasExplicitID: Bool
    /// The condition's domain.
    package var domain: Domain
    /// `path_beg=`: the request path (percent-encoded, no query) must start with it.
    package var pathBeg: String?
    /// `proto=http|ws`.
    package var proto: Proto?
    /// `ssl=yes|no`: only TLS / only plain requests.
    package var ssl: Bool?
    /// The targets in failover order (never empty).
    package var targets: [RouteTarget]
    /// `sig_iss=` (effective only together with ``sigKey``).
    package var sigIss: String?
    /// `sig_key=` (effective only together with ``sigIss``).
    package var sigKey: SigningKey?
    /// `prefix=`: channel prefix for subscriptions made through this route ("" when none).
    package var prefix: String
    /// `as_host=H[:port]`: rewritten request host.
    package var asHost: String?
    /// Bytes removed from the start of the path before forwarding (`path_rem=N`, or the length of `path_beg`
    /// with `replace_beg`).
    package var pathRemove: Int
    /// `replace_beg=S`: prepended after ``pathRemove`` bytes were removed.
    package var replaceBeg: String?
    /// `header=Name:Value` options in order.
    package var headers: [Header]
    /// `no_grip`: plain reverse proxying, no Grip-Sig, GRIP headers passed through.
    package var noGrip: Bool
    /// `debug`: informative error bodies.
    package var debug: Bool
    /// `aco`: auto cross-origin.
    package var autoCrossOrigin: Bool
    /// `jsonp_*`: JSON-P options, used with ``autoCrossOrigin`` or `[proxy] auto_cross_origin`.
    package var jsonp: JSONPConfig
    /// P-8's `resume_last_event_id`: resume SSE streams from the store using the client's `Last-Event-ID`.
    package var resumeLastEventID: Bool
    /// `log_level=N` (Pushpin 1.41): the log level (0 error ... 3 debug) of requests on this route, instead of
    /// the process's.
    package var logLevel: Int?
    /// The 1-based line of the routes file (1 for a route given on the command line).
    package var line: Int

    /// Creates a route; ``id`` defaults to the one built from the condition.
    package init(
        id: String? = nil,
        domain: Domain,
        pathBeg: String? = nil,
        proto: Proto? = nil,
        ssl: Bool? = nil,
        targets: [RouteTarget],
        sigIss: String? = nil,
        sigKey: SigningKey? = nil,
        prefix: String = "",
        asHost: String? = nil,
        pathRemove: Int = 0,
        replaceBeg: String? = nil,
        headers: [Header] = [],
        noGrip: Bool = false,
        debug: Bool = false,
        autoCrossOrigin: Bool = false,
        jsonp: JSONPConfig = JSONPConfig(),
        resumeLastEventID: Bool = false,
        logLevel: Int? = nil,
        line: Int = 1
    ) {
        self.id = id ?? Self.conditionID(domain: domain, proto: proto, ssl: ssl, pathBeg: pathBeg)
        self.hasExplicitID = id != nil
        self.domain = domain
        self.pathBeg = pathBeg
        self.proto = proto
        self.ssl = ssl
        self.targets = targets
        self.sigIss = sigIss
        self.sigKey = sigKey
        self.prefix = prefix
        self.asHost = asHost
        self.pathRemove = pathRemove
        self.replaceBeg = replaceBeg
        self.headers = headers
        self.noGrip = noGrip
        self.debug = debug
        self.autoCrossOrigin = autoCrossOrigin
        self.jsonp = jsonp
        self.resumeLastEventID = resumeLastEventID
        self.logLevel = logLevel
        self.line = line
    }

    /// The per-route Grip-Sig issuer and key when both are set, else nil (use the global ones).
    package var signature: (issuer: String, key: SigningKey)? {
        guard let issuer = self.sigIss, let key = self.sigKey else {
            return nil
        }
        return (issuer, key)
    }

    /// The path to send to the backend: ``pathRemove`` leading bytes removed, then ``replaceBeg`` prepended.
    package func rewrittenPath(_ path: String) -> String {
        var result = path
        if self.pathRemove > 0 {
            result = String(decoding: path.utf8.dropFirst(self.pathRemove), as: UTF8.self)
        }
        if let replaceBeg = self.replaceBeg {
            result = replaceBeg + result
        }
        return result
    }

    /// Whether the condition's proto, ssl and path_beg accept the request (the domain is matched by the table).
    package func matches(path: String, isTLS: Bool, isWebSocket: Bool) -> Bool {
        if let proto = self.proto, (proto == .ws) != isWebSocket {
            return false
        }
        if let ssl = self.ssl, ssl != isTLS {
            return false
        }
        if let pathBeg = self.pathBeg, !path.utf8.starts(with: pathBeg.utf8) {
            return false
        }
        return true
    }

    static func conditionID(domain: Domain, proto: Proto?, ssl: Bool?, pathBeg: String?) -> String {
        let domainText: String
        switch domain {
        case .any: domainText = "*"
        case .host(let host): domainText = host
        case .none: domainText = ""
        }
        let sslText = ssl.map { $0 ? "yes" : "no" } ?? "*"
        return "\(domainText),\(proto?.rawValue ?? "*"),\(sslText),\(pathBeg ?? "*")"
    }
}
