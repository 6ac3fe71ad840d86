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

    /// Every option of the route, kept in one shared ``Storage``.
    private struct Fields: Sendable, Hashable {
        var id: String
        var hasExplicitID: Bool
        var domain: Domain
        var pathBeg: String?
        var proto: Proto?
        var ssl: Bool?
        var targets: [RouteTarget]
        var sigIss: String?
        var sigKey: SigningKey?
        var prefix: String
        var asHost: String?
        var pathRemove: Int
        var replaceBeg: String?
        var headers: [Header]
        var noGrip: Bool
        var debug: Bool
        var autoCrossOrigin: Bool
        var jsonp: JSONPConfig
        var resumeLastEventID: Bool
        var logLevel: Int?
        var line: Int
    }

    /// A route is copied into every exchange that takes it (and into its backend request and links), and held
    /// requests keep their exchange for as long as they are held: one reference to shared options, copied only
    /// when a copy is changed, instead of some 270 bytes and a dozen retained strings each time.
    private final class Storage: @unchecked Sendable {
        // Mutated only through ``Route/uniqueStorage()``, when no other route shares it.
        var fields: Fields

        init(_ fields: Fields) {
            self.fields = fields
        }
    }

    private var storage: Storage

    private mutating func uniqueStorage() -> Storage {
        if !isKnownUniquelyReferenced(&self.storage) {
            self.storage = Storage(self.storage.fields)
        }
        return self.storage
    }

    /// The explicit `id=`, or one built from the condition (`domain,proto,ssl,path_beg` with `*` for unset).
    package var id: String {
        get { self.storage.fields.id }
        set { self.uniqueStorage().fields.id = newValue }
    }
    /// Whether ``id`` was written in the file.
    package var hasExplicitID: Bool {
        get { self.storage.fields.hasExplicitID }
        set { self.uniqueStorage().fields.hasExplicitID = newValue }
    }
    /// The condition's domain.
    package var domain: Domain {
        get { self.storage.fields.domain }
        set { self.uniqueStorage().fields.domain = newValue }
    }
    /// `path_beg=`: the request path (percent-encoded, no query) must start with it.
    package var pathBeg: String? {
        get { self.storage.fields.pathBeg }
        set { self.uniqueStorage().fields.pathBeg = newValue }
    }
    /// `proto=http|ws`.
    package var proto: Proto? {
        get { self.storage.fields.proto }
        set { self.uniqueStorage().fields.proto = newValue }
    }
    /// `ssl=yes|no`: only TLS / only plain requests.
    package var ssl: Bool? {
        get { self.storage.fields.ssl }
        set { self.uniqueStorage().fields.ssl = newValue }
    }
    /// The targets in failover order (never empty).
    package var targets: [RouteTarget] {
        get { self.storage.fields.targets }
        set { self.uniqueStorage().fields.targets = newValue }
    }
    /// `sig_iss=` (effective only together with ``sigKey``).
    package var sigIss: String? {
        get { self.storage.fields.sigIss }
        set { self.uniqueStorage().fields.sigIss = newValue }
    }
    /// `sig_key=` (effective only together with ``sigIss``).
    package var sigKey: SigningKey? {
        get { self.storage.fields.sigKey }
        set { self.uniqueStorage().fields.sigKey = newValue }
    }
    /// `prefix=`: channel prefix for subscriptions made through this route ("" when none).
    package var prefix: String {
        get { self.storage.fields.prefix }
        set { self.uniqueStorage().fields.prefix = newValue }
    }
    /// `as_host=H[:port]`: rewritten request host.
    package var asHost: String? {
        get { self.storage.fields.asHost }
        set { self.uniqueStorage().fields.asHost = newValue }
    }
    /// Bytes removed from the start of the path before forwarding (`path_rem=N`, or the length of `path_beg`
    /// with `replace_beg`).
    package var pathRemove: Int {
        get { self.storage.fields.pathRemove }
        set { self.uniqueStorage().fields.pathRemove = newValue }
    }
    /// `replace_beg=S`: prepended after ``pathRemove`` bytes were removed.
    package var replaceBeg: String? {
        get { self.storage.fields.replaceBeg }
        set { self.uniqueStorage().fields.replaceBeg = newValue }
    }
    /// `header=Name:Value` options in order.
    package var headers: [Header] {
        get { self.storage.fields.headers }
        set { self.uniqueStorage().fields.headers = newValue }
    }
    /// `no_grip`: plain reverse proxying, no Grip-Sig, GRIP headers passed through.
    package var noGrip: Bool {
        get { self.storage.fields.noGrip }
        set { self.uniqueStorage().fields.noGrip = newValue }
    }
    /// `debug`: informative error bodies.
    package var debug: Bool {
        get { self.storage.fields.debug }
        set { self.uniqueStorage().fields.debug = newValue }
    }
    /// `aco`: auto cross-origin.
    package var autoCrossOrigin: Bool {
        get { self.storage.fields.autoCrossOrigin }
        set { self.uniqueStorage().fields.autoCrossOrigin = newValue }
    }
    /// `jsonp_*`: JSON-P options, used with ``autoCrossOrigin`` or `[proxy] auto_cross_origin`.
    package var jsonp: JSONPConfig {
        get { self.storage.fields.jsonp }
        set { self.uniqueStorage().fields.jsonp = newValue }
    }
    /// P-8's `resume_last_event_id`: resume SSE streams from the store using the client's `Last-Event-ID`.
    package var resumeLastEventID: Bool {
        get { self.storage.fields.resumeLastEventID }
        set { self.uniqueStorage().fields.resumeLastEventID = newValue }
    }
    /// `log_level=N` (Pushpin 1.41): the log level (0 error ... 3 debug) of requests on this route, instead of
    /// the process's.
    package var logLevel: Int? {
        get { self.storage.fields.logLevel }
        set { self.uniqueStorage().fields.logLevel = newValue }
    }
    /// The 1-based line of the routes file (1 for a route given on the command line).
    package var line: Int {
        get { self.storage.fields.line }
        set { self.uniqueStorage().fields.line = newValue }
    }

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
        self.storage = Storage(
            Fields(
                id: id ?? Self.conditionID(domain: domain, proto: proto, ssl: ssl, pathBeg: pathBeg),
                hasExplicitID: id != nil,
                domain: domain,
                pathBeg: pathBeg,
                proto: proto,
                ssl: ssl,
                targets: targets,
                sigIss: sigIss,
                sigKey: sigKey,
                prefix: prefix,
                asHost: asHost,
                pathRemove: pathRemove,
                replaceBeg: replaceBeg,
                headers: headers,
                noGrip: noGrip,
                debug: debug,
                autoCrossOrigin: autoCrossOrigin,
                jsonp: jsonp,
                resumeLastEventID: resumeLastEventID,
                logLevel: logLevel,
                line: line
            )
        )
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

    package static func == (lhs: Route, rhs: Route) -> Bool {
        lhs.storage === rhs.storage || lhs.storage.fields == rhs.storage.fields
    }

    package func hash(into hasher: inout Hasher) {
        self.storage.fields.hash(into: &hasher)
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
