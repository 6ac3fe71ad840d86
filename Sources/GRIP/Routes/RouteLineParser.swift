/// Builds a ``Route`` from one routes-file line (Pushpin's `DomainMap::parseRouteLine`).
enum RouteLineParser {
    /// Route condition options P-8 reads.
    static let conditionOptions: Set<String> = [
        "id", "path_beg", "proto", "ssl", "sig_iss", "sig_key", "prefix", "as_host", "path_rem", "replace_beg",
        "header", "no_grip", "debug", "aco", "resume_last_event_id", "log_level",
        "jsonp_mode", "jsonp_cb", "jsonp_body", "jsonp_defcb", "jsonp_defmethod",
    ]
    /// Target options P-8 reads.
    static let targetOptions: Set<String> = [
        "ssl", "insecure", "trust_connect_host", "host", "over_http", "one_event", "untrusted", "sub",
    ]

    /// The route on `line` and the names of options it ignores, or nil for a blank or comment line.
    static func route(
        from line: String,
        line lineNumber: Int
    ) throws(RouteLineError) -> (route: Route, ignoredOptions: [String])? {
        let sections = try RouteLineTokenizer.sections(of: line)
        guard let condition = sections.first else {
            return nil
        }
        guard sections.count >= 2 else {
            throw RouteLineError("must specify condition and at least one target")
        }
        var ignored: [String] = []
        for prop in condition.props where !Self.conditionOptions.contains(prop.name) && !ignored.contains(prop.name) {
            ignored.append(prop.name)
        }

        let domain: Route.Domain
        switch condition.value {
        case "": domain = .none
        case "*": domain = .any
        default: domain = .host(condition.value.lowercased())
        }
        var proto: Route.Proto?
        if let value = condition.last("proto") {
            guard let parsed = Route.Proto(rawValue: value) else {
                throw RouteLineError("proto must be set to 'http' or 'ws'")
            }
            proto = parsed
        }
        var ssl: Bool?
        if let value = condition.last("ssl") {
            switch value {
            case "yes": ssl = true
            case "no": ssl = false
            default: throw RouteLineError("ssl must be set to 'yes' or 'no'")
            }
        }
        let pathBeg = condition.last("path_beg")
        if pathBeg?.isEmpty == true {
            throw RouteLineError("path_beg cannot be empty")
        }
        var sigKey: SigningKey?
        if let value = condition.last("sig_key") {
            do {
                sigKey = try SigningKey.parse(value)
            } catch {
                throw RouteLineError("sig_key: \(error.message)")
            }
        }
        var pathRemove = 0
        if let value = condition.last("path_rem") {
            guard let count = Int(value), count >= 0 else {
                throw RouteLineError("path_rem must be a number >= 0")
            }
            pathRemove = count
        }
        let replaceBeg = condition.last("replace_beg")
        if replaceBeg != nil {
            pathRemove = pathBeg?.utf8.count ?? 0
        }
        var logLevel: Int?
        if let value = condition.last("log_level") {
            guard let level = Int(value), level >= 0 else {
                throw RouteLineError("log_level must be a number >= 0")
            }
            logLevel = level
        }
        var headers: [Route.Header] = []
        for value in condition.all("header") {
            guard let colon = value.firstIndex(of: ":"), colon != value.startIndex else {
                throw RouteLineError("header must use format 'name:value'")
            }
            let headerValue = value[value.index(after: colon)...].drop { $0 == " " }
            headers.append(Route.Header(name: String(value[..<colon]), value: String(headerValue)))
        }

        let jsonp = try Self.jsonpConfig(condition)

        var targets: [RouteTarget] = []
        for (offset, section) in sections.dropFirst().enumerated() {
            targets.append(try Self.target(section))
            for prop in section.props where !Self.targetOptions.contains(prop.name) {
                let name = "target \(offset + 1) \(prop.name)"
                if !ignored.contains(name) {
                    ignored.append(name)
                }
            }
        }

        let route = Route(
            id: condition.last("id"),
            domain: domain,
            pathBeg: pathBeg,
            proto: proto,
            ssl: ssl,
            targets: targets,
            sigIss: condition.last("sig_iss"),
            sigKey: sigKey,
            prefix: condition.last("prefix") ?? "",
            asHost: condition.last("as_host"),
            pathRemove: pathRemove,
            replaceBeg: replaceBeg,
            headers: headers,
            noGrip: condition.has("no_grip"),
            debug: condition.has("debug"),
            autoCrossOrigin: condition.has("aco"),
            jsonp: jsonp,
            resumeLastEventID: condition.has("resume_last_event_id"),
            logLevel: logLevel,
            line: lineNumber
        )
        return (route, ignored)
    }

    private static func jsonpConfig(_ condition: RouteSection) throws(RouteLineError) -> JSONPConfig {
        var mode = JSONPConfig.Mode.extended
        if let value = condition.last("jsonp_mode") {
            guard let parsed = JSONPConfig.Mode(rawValue: value) else {
                throw RouteLineError("jsonp_mode must be set to 'basic' or 'extended'")
            }
            mode = parsed
        }
        let callbackParameter = condition.last("jsonp_cb").flatMap { $0.isEmpty ? nil : $0 }
        return JSONPConfig(
            mode: mode,
            callbackParameter: callbackParameter ?? "callback",
            bodyParameter: condition.last("jsonp_body").flatMap { $0.isEmpty ? nil : $0 },
            defaultCallback: condition.last("jsonp_defcb").flatMap { $0.isEmpty ? nil : $0 },
            defaultMethod: condition.last("jsonp_defmethod").flatMap { $0.isEmpty ? nil : $0 }
        )
    }

    private static func target(_ section: RouteSection) throws(RouteLineError) -> RouteTarget {
        let value = section.value
        let kind: RouteTarget.Kind
        if value == "test" {
            kind = .test
        } else if value.hasPrefix("zhttp/") || value.hasPrefix("zhttpreq/") {
            throw RouteLineError("target \(value): zhttp/zhttpreq targets are not supported")
        } else {
            let host: Substring
            let portText: Substring
            if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
                host = value[value.index(after: value.startIndex)..<close]
                let rest = value[value.index(after: close)...]
                guard rest.hasPrefix(":") else {
                    throw RouteLineError("target bad format")
                }
                portText = rest.dropFirst()
            } else {
                guard let colon = value.firstIndex(of: ":") else {
                    throw RouteLineError("target bad format")
                }
                host = value[..<colon]
                portText = value[value.index(after: colon)...]
            }
            guard !host.isEmpty else {
                throw RouteLineError("target bad format")
            }
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw RouteLineError("target invalid port")
            }
            kind = .host(host: String(host), port: port)
        }
        return RouteTarget(
            kind: kind,
            ssl: section.has("ssl"),
            insecure: section.has("insecure"),
            trustConnectHost: section.has("trust_connect_host"),
            hostHeader: section.last("host"),
            overHTTP: section.has("over_http"),
            oneEvent: section.has("one_event"),
            untrusted: section.has("untrusted"),
            subscriptions: section.all("sub").filter { !$0.isEmpty }
        )
    }
}
