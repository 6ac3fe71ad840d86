/// The parsed routes file and the route selection of grip-spec §2.2.
package struct RouteTable: Sendable, Hashable {
    /// Every loaded route in file order.
    package private(set) var routes: [Route]
    private var hostBuckets: [String: [Int]] = [:]
    private var wildcardBucket: [Int] = []
    private var idIndex: [String: Int] = [:]

    /// A table of already-built routes (no duplicate check; later ids do not replace earlier ones).
    package init(routes: [Route] = []) {
        self.routes = []
        for route in routes {
            self.append(route)
        }
    }

    /// Parses a routes file. Never fails: invalid lines are skipped with a warning such as
    /// `routes line 3: target invalid port`, and each line's ignored options are listed once.
    package static func parse(_ text: String) -> (table: RouteTable, warnings: [String]) {
        var table = RouteTable()
        var warnings: [String] = []
        var explicitIDLines: [String: Int] = [:]
        var ambiguousIDs: Set<String> = []
        var lineNumber = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let route: Route
            do {
                guard let parsed = try RouteLineParser.route(from: String(line), line: lineNumber) else {
                    continue
                }
                route = parsed.route
                if !parsed.ignoredOptions.isEmpty {
                    warnings.append(
                        "routes line \(lineNumber): ignoring unknown or unsupported options: "
                            + parsed.ignoredOptions.joined(separator: ", ")
                    )
                }
            } catch {
                warnings.append("routes line \(lineNumber): \(error.message)")
                continue
            }
            if route.domain == .none && !route.hasExplicitID {
                warnings.append("routes line \(lineNumber): condition has no domain or id")
                continue
            }
            if route.domain != .none, table.routes.contains(where: { Self.sameCondition($0, route) }) {
                warnings.append("routes line \(lineNumber): skipping duplicate condition")
                continue
            }
            if route.hasExplicitID {
                if let first = explicitIDLines[route.id] {
                    warnings.append(
                        "routes line \(lineNumber): id \"\(route.id)\" is also used on line \(first); "
                            + "lookups by this id are disabled"
                    )
                    ambiguousIDs.insert(route.id)
                } else {
                    explicitIDLines[route.id] = lineNumber
                }
            }
            table.append(route)
        }
        for id in ambiguousIDs {
            table.idIndex[id] = nil
        }
        return (table, warnings)
    }

    /// The route for a request, or nil (then the proxy answers `502 No route for host: <host>`).
    ///
    /// The host's port is stripped and the host lowercased. If any route names that exact host, only those
    /// routes are candidates, otherwise the `*` routes (no fallback from a host bucket to `*`). Among matching
    /// candidates a `proto` condition beats none, then a longer `path_beg` wins, then an `ssl` condition beats
    /// none; on a tie the earlier line wins.
    package func route(host: String, path: String, isTLS: Bool, isWebSocket: Bool) -> Route? {
        let candidates = self.hostBuckets[Self.hostWithoutPort(host).lowercased()] ?? self.wildcardBucket
        var best: Route?
        for index in candidates {
            let route = self.routes[index]
            guard route.matches(path: path, isTLS: isTLS, isWebSocket: isWebSocket) else {
                continue
            }
            if let current = best, Self.specificity(route) <= Self.specificity(current) {
                continue
            }
            best = route
        }
        return best
    }

    /// The route with this id (explicit or built from the condition); nil when unknown or used by several
    /// lines.
    package func route(id: String) -> Route? {
        self.idIndex[id].map { self.routes[$0] }
    }

    private mutating func append(_ route: Route) {
        let index = self.routes.count
        self.routes.append(route)
        switch route.domain {
        case .any:
            self.wildcardBucket.append(index)
        case .host(let host):
            self.hostBuckets[host, default: []].append(index)
        case .none:
            break
        }
        if self.idIndex[route.id] == nil {
            self.idIndex[route.id] = index
        }
    }

    private static func sameCondition(_ lhs: Route, _ rhs: Route) -> Bool {
        lhs.domain == rhs.domain && lhs.proto == rhs.proto && lhs.ssl == rhs.ssl && lhs.pathBeg == rhs.pathBeg
    }

    private static func specificity(_ route: Route) -> (Int, Int, Int) {
        (route.proto == nil ? 0 : 1, route.pathBeg?.utf8.count ?? 0, route.ssl == nil ? 0 : 1)
    }

    /// `host` without `:port`; `[v6]:port` and `[v6]` give the address without brackets.
    static func hostWithoutPort(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.firstIndex(of: ":"), host.lastIndex(of: ":") == colon {
            return String(host[..<colon])
        }
        return host
    }
}
