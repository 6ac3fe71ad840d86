// The routes file and p-8.conf: parsing never fails on any text (bad lines are warnings, bad values a
// ConfigError), and what is accepted is usable.

func fuzzRoutes(_ bytes: [UInt8]) {
    let routesText = text(bytes)
    let (table, _) = RouteTable.parse(routesText)
    let lineCount = routesText.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).count
    for route in table.routes {
        require((1...lineCount).contains(route.line), "route from line \(route.line) of \(lineCount)")
        require(!route.targets.isEmpty, "a route without targets")
        for target in route.targets {
            if case .host(let host, let port) = target.kind {
                require(!host.isEmpty && (1...65535).contains(port), "target \(host):\(port)")
            }
        }
        _ = route.rewrittenPath(route.pathBeg ?? "/")
        // A route for a plain host name is reachable by a request for that host.
        if case .host(let host) = route.domain, !host.contains(":"), !host.hasPrefix("[") {
            let found = table.route(
                host: host,
                path: route.pathBeg ?? "/",
                isTLS: route.ssl ?? false,
                isWebSocket: route.proto == .ws
            )
            require(found != nil, "the route of line \(route.line) is unreachable for host \(host)")
        }
        if route.hasExplicitID, let found = table.route(id: route.id) {
            require(found.id == route.id, "id \(route.id) finds route \(found.id)")
        }
    }
}

/// The input: a p-8.conf text; `include=` files resolve to the same text once (a cycle is refused).
func fuzzConfig(_ bytes: [UInt8]) {
    let configText = text(bytes)
    let document = INIDocument(parsing: configText)
    checkINIRoundTrip(document)
    var reads = 0
    do {
        let configuration = try P8Configuration.parse(text: configText, configDirectory: "/etc/p8") { _ in
            reads += 1
            return reads <= 1 ? configText : nil
        }
        for listener in configuration.runner.httpListeners {
            require((0...65535).contains(listener.port), "listener port \(listener.port)")
        }
        require((0...65535).contains(configuration.handler.pushInHTTPPort), "publish port")
        require(configuration.handler.pushInHTTPMaxBodySize >= 0, "negative body size limit")
    } catch {
        require(error is ConfigError, "config parse threw \(type(of: error)), not a ConfigError")
    }
}

/// The entries written back as INI text (each value quoted) parse to the same entries, when INI can write
/// them (no line breaks or quotes, keys and section names that cannot be mistaken for something else).
func checkINIRoundTrip(_ document: INIDocument) {
    let writable = document.entries.allSatisfy { entry in
        !(entry.key + entry.value + entry.section).contains { $0.isNewline || $0 == "\"" }
            && !entry.key.contains("=") && !entry.key.hasPrefix("[") && !entry.key.hasPrefix(";")
            && !entry.key.hasPrefix("#") && !entry.section.contains("]")
    }
    guard writable else {
        return
    }
    var written = ""
    var section = ""
    for entry in document.entries {
        if entry.section != section {
            written += "[\(entry.section)]\n"
            section = entry.section
        }
        written += "\(entry.key)=\"\(entry.value)\"\n"
    }
    let again = INIDocument(parsing: written)
    let pairs = document.entries.map { [$0.section, $0.key, $0.value] }
    require(again.entries.map { [$0.section, $0.key, $0.value] } == pairs, "INI entries change when written back")
}
