/// Turns the merged INI entries of the config file and its include into ``P8Configuration``.
struct ConfigReader {
    /// One effective value with where it came from.
    struct Located {
        var value: String
        var line: Int
        var file: String
    }

    struct SectionKey: Hashable {
        var section: String
        var key: String
    }

    private(set) var values: [SectionKey: Located] = [:]
    private(set) var order: [SectionKey] = []
    private(set) var emptySections: [String] = []
    private(set) var warnings: [String] = []
    let configDirectory: String
    private(set) var rundir = ""
    private(set) var libdir = ""
    private(set) var ipcPrefix = "pushpin-"
    private(set) var portOffset = 0
    /// The contents of the files `file:` signing keys name, by absolute path (nil: not readable).
    private(set) var keyFiles: [String: String?] = [:]
    /// The keys that take a signing key.
    private static let signingKeys = [("proxy", "sig_key"), ("proxy", "upstream_key"), ("handler", "push_in_http_key")]

    private init(configDirectory: String) {
        self.configDirectory = configDirectory
    }

    static func read(
        text: String,
        configDirectory: String,
        configFile: String,
        readFile: (String) -> String?
    ) throws(ConfigError) -> P8Configuration {
        var reader = ConfigReader(configDirectory: configDirectory)
        let main = INIDocument(parsing: text)
        reader.warnings += main.warnings.map { "\(configFile): \($0)" }

        // include= is read from the main file only; its keys lose against the main file's.
        reader.libdir = reader.resolvedPath(main.value(section: "global", key: "libdir")?.value, default: ".")
        var included: (document: INIDocument, file: String)?
        if let include = main.value(section: "global", key: "include"), !include.value.isEmpty {
            let path = ConfigPath.resolve(reader.substitute(include.value), against: configDirectory)
            if let includedText = readFile(path) {
                let document = INIDocument(parsing: includedText)
                reader.warnings += document.warnings.map { "\(path): \($0)" }
                included = (document, path)
            } else {
                reader.warnings.append(
                    "include file \(path) (include=\(include.value)) not found; continuing without it"
                )
            }
        }
        if let included {
            reader.add(included.document, file: included.file, includeKeys: false)
        }
        reader.add(main, file: configFile, includeKeys: true)
        reader.reportKeys()
        for (section, key) in Self.signingKeys {
            if let path = reader.keyFilePath(section, key) {
                reader.keyFiles[path] = .some(readFile(path))
            }
        }

        let global = try reader.readGlobal()
        let runner = try reader.readRunner()
        let proxy = try reader.readProxy()
        let handler = try reader.readHandler()
        var store = try reader.readStore()
        store.reorderingWaitMilliseconds = handler.messageWait
        var configuration = P8Configuration(
            global: global,
            runner: runner,
            proxy: proxy,
            handler: handler,
            store: store,
            configFile: configFile,
            warnings: reader.warnings
        )
        configuration.metrics = try reader.readMetrics()
        return configuration
    }

    // MARK: - Merging and key reports

    private mutating func add(_ document: INIDocument, file: String, includeKeys: Bool) {
        for entry in document.entries {
            if !includeKeys && entry.section == "global" && entry.key == "include" {
                continue  // no nested includes
            }
            let sectionKey = SectionKey(section: entry.section, key: entry.key)
            if self.values[sectionKey] == nil {
                self.order.append(sectionKey)
            }
            self.values[sectionKey] = Located(value: entry.value, line: entry.line, file: file)
        }
        for section in document.sections where !document.entries.contains(where: { $0.section == section }) {
            self.emptySections.append(section)
        }
    }

    private mutating func reportKeys() {
        var unknown: [String] = []
        var unsupported: [String] = []
        for sectionKey in self.order {
            let name = "[\(sectionKey.section)] \(sectionKey.key)"
            switch ConfigKeys.classify(section: sectionKey.section, key: sectionKey.key) {
            case .supported:
                break
            case .acceptedUnsupported:
                unsupported.append(name)
            case .unknown:
                unknown.append(name)
            }
        }
        for section in self.emptySections where ConfigKeys.supported[section] == nil {
            unknown.append("[\(section)]")
        }
        if !unknown.isEmpty {
            self.warnings.append("ignoring unknown config keys: \(unknown.joined(separator: ", "))")
        }
        if !unsupported.isEmpty {
            self.warnings.append(
                "config keys accepted but not supported (ignored): \(unsupported.joined(separator: ", "))"
            )
        }
    }

    // MARK: - Sections

    private mutating func readGlobal() throws(ConfigError) -> GlobalConfiguration {
        self.ipcPrefix = self.raw("global", "ipc_prefix")?.value ?? "pushpin-"
        self.portOffset = try self.int("global", "port_offset", minimum: 0) ?? 0
        let rundirValue = self.raw("global", "rundir") ?? self.raw("runner", "rundir")
        self.rundir = self.resolvedPath(rundirValue.map { self.substitute($0.value) }, default: "run")
        return GlobalConfiguration(
            rundir: self.rundir,
            libdir: self.libdir,
            ipcPrefix: self.ipcPrefix,
            portOffset: self.portOffset
        )
    }

    private func readRunner() throws(ConfigError) -> RunnerConfiguration {
        var listeners = [ListenAddress(host: "0.0.0.0", port: 7999)]
        if let located = self.raw("runner", "http_port") {
            listeners = []
            for item in self.list(located.value) {
                let address: ListenAddress
                do {
                    address = try ListenAddress(parsing: item)
                } catch {
                    throw self.located(error, located, "runner", "http_port")
                }
                if !listeners.contains(address) {
                    listeners.append(address)
                }
            }
            if listeners.isEmpty {
                throw self.failure(located, "runner", "http_port", "must name at least one [addr:]port")
            }
        }
        var logLevel = 2
        if let located = self.raw("runner", "log_level"), let first = self.list(located.value).first,
            !first.contains(":")
        {
            guard let level = Int(first), level >= 0 else {
                throw self.failure(located, "runner", "log_level", "\"\(first)\" is not a log level >= 0")
            }
            logLevel = level
        }
        var runner = RunnerConfiguration(
            httpListeners: listeners,
            logdir: self.resolvedPath(self.string("runner", "logdir"), default: "log"),
            logLevel: logLevel,
            clientBufferSize: try self.int("runner", "client_buffer_size", minimum: 1) ?? 8192,
            clientMaxConn: try self.int("runner", "client_maxconn", minimum: 1) ?? 50_000,
            services: self.raw("runner", "services").map { self.list($0.value) } ?? []
        )
        runner.tls = try self.readTLS()
        return runner
    }

    /// `https_ports`, with certificates in `runner/certs` beside the config (as Pushpin's connection manager).
    private func readTLS() throws(ConfigError) -> TLSListenConfiguration {
        var tls = TLSListenConfiguration(
            certsDirectory: ConfigPath.resolve("runner/certs", against: self.configDirectory)
        )
        guard let located = self.raw("runner", "https_ports") else { return tls }
        for item in self.list(located.value) {
            do {
                let address = try ListenAddress(parsing: item)
                if !tls.listeners.contains(address) {
                    tls.listeners.append(address)
                }
            } catch {
                throw self.located(error, located, "runner", "https_ports")
            }
        }
        return tls
    }

    private func readProxy() throws(ConfigError) -> ProxyConfiguration {
        var mode = XForwardedProtocolMode.protoOnly
        if let located = self.raw("proxy", "set_x_forwarded_protocol") {
            switch located.value {
            case "proto-only": mode = .protoOnly
            case "true": mode = .protoAndProtocol
            default: mode = .off
            }
        }
        return ProxyConfiguration(
            routesFile: self.resolvedPath(self.string("proxy", "routesfile"), default: "routes"),
            debug: try self.bool("proxy", "debug") ?? false,
            autoCrossOrigin: try self.bool("proxy", "auto_cross_origin") ?? false,
            acceptXForwardedProtocol: try self.bool("proxy", "accept_x_forwarded_protocol") ?? false,
            setXForwardedProtocol: mode,
            xForwardedFor: try self.forwardedForRule("proxy", "x_forwarded_for"),
            xForwardedForTrusted: try self.forwardedForRule("proxy", "x_forwarded_for_trusted"),
            acceptPushpinRoute: try self.bool("proxy", "accept_pushpin_route") ?? false,
            sigIss: self.raw("proxy", "sig_iss").map { self.substitute($0.value) } ?? "pushpin",
            sigKey: try self.signingKey("proxy", "sig_key"),
            upstreamKey: try self.signingKey("proxy", "upstream_key"),
            maxOpenRequests: try self.optionalLimit("proxy", "max_open_requests"),
            backendConnectTimeout: try self.int("proxy", "backend_connect_timeout", minimum: 1) ?? 10,
            backendResponseTimeout: try self.int("proxy", "backend_response_timeout", minimum: 1) ?? 60,
            webSocketMaxFrameBytes: try self.int("proxy", "websocket_max_frame_size", minimum: 126) ?? 1 << 20,
            webSocketMaxMessageBytes: try self.int("proxy", "websocket_max_message_size", minimum: 126) ?? 1 << 20
        )
    }

    private func readHandler() throws(ConfigError) -> HandlerConfiguration {
        var subSpecs = [try self.offsetSpec("tcp://127.0.0.1:5562", nil, "handler", "push_in_sub_specs")]
        if let located = self.raw("handler", "push_in_sub_specs") ?? self.raw("handler", "push_in_sub_spec") {
            subSpecs = []
            for item in self.list(located.value) {
                subSpecs.append(try self.offsetSpec(self.substitute(item), located, "handler", "push_in_sub_specs"))
            }
        }
        var httpPort = 5561
        if let port = try self.int("handler", "push_in_http_port", minimum: 0) {
            httpPort = port
        }
        httpPort += self.portOffset
        if httpPort > 65535, let located = self.raw("handler", "push_in_http_port") {
            throw self.failure(located, "handler", "push_in_http_port", "\(httpPort) with port_offset is > 65535")
        }
        var statsFormat = StatsFormat.tnetstring
        if let located = self.raw("handler", "stats_format"), !located.value.isEmpty {
            guard let format = StatsFormat(rawValue: located.value) else {
                throw self.failure(located, "handler", "stats_format", "must be tnetstring or json")
            }
            statsFormat = format
        }
        let prometheusPort = try self.readMetrics().listen?.port
        // Pushpin 1.41's `update_on_first_subscription` (default true) switches its retry of long-polls ~1 s after
        // their channel's first subscription, which covers publishes between the backend's read and the
        // subscription. P-8 has no such retry: a hold with a prev-id is resumed from the log. The value is checked.
        _ = try self.bool("handler", "update_on_first_subscription")
        return HandlerConfiguration(
            pushInSpec: try self.spec("handler", "push_in_spec", default: "tcp://127.0.0.1:5560"),
            pushInSubSpecs: subSpecs,
            pushInSubConnect: try self.bool("handler", "push_in_sub_connect") ?? false,
            pushInHTTPAddr: self.string("handler", "push_in_http_addr") ?? "127.0.0.1",
            pushInHTTPPort: httpPort,
            statsSpec: try self.spec("handler", "stats_spec", default: "ipc://{rundir}/{ipc_prefix}stats"),
            commandSpec: try self.spec("handler", "command_spec", default: "tcp://127.0.0.1:5563"),
            messageRate: try self.optionalLimit("handler", "message_rate"),
            messageHWM: try self.optionalLimit("handler", "message_hwm"),
            messageWait: try self.int("handler", "message_wait", minimum: 0) ?? 5000,
            idCacheTTL: try self.int("handler", "id_cache_ttl", minimum: 0) ?? 60,
            subscriptionLinger: try self.int("handler", "subscription_linger", minimum: 0) ?? 60,
            connectionSubscriptionMax: try self.int("handler", "connection_subscription_max", minimum: 1) ?? 20,
            statsFormat: statsFormat,
            statsReportInterval: try self.int("handler", "stats_report_interval", minimum: 0) ?? 10,
            prometheusPort: prometheusPort,
            pushInHTTPMaxBodySize: try self.int("handler", "push_in_http_max_body_size", minimum: 1) ?? 1_000_000,
            publishKey: try self.signingKey("handler", "push_in_http_key")
        )
    }

    private func readStore() throws(ConfigError) -> StoreConfiguration {
        var synchronous = SynchronousMode.normal
        if let located = self.raw("store", "synchronous"), !located.value.isEmpty {
            guard let mode = SynchronousMode(rawValue: located.value.lowercased()) else {
                throw self.failure(located, "store", "synchronous", "must be normal or full")
            }
            synchronous = mode
        }
        let defaults = RetentionPolicy()
        let retention = RetentionPolicy(
            maxItems: try self.int("store", "max_items", minimum: 1) ?? defaults.maxItems,
            maxAgeSeconds: try self.int("store", "max_age", minimum: 1) ?? defaults.maxAgeSeconds,
            maxBytes: try self.int("store", "max_bytes", minimum: 1) ?? defaults.maxBytes
        )
        var overrides: [StoreConfiguration.RetentionOverride] = []
        if let located = self.raw("store", "retention_overrides") {
            for item in self.list(located.value) {
                overrides.append(try self.retentionOverride(item, base: retention, located))
            }
        }
        var backend = StoreBackendKind.sqlite
        if let located = self.raw("store", "backend") {
            guard let kind = StoreBackendKind(rawValue: located.value) else {
                throw self.failure(located, "store", "backend", "must be sqlite or postgresql")
            }
            backend = kind
        }
        let postgresqlURL = self.raw("store", "postgresql_url")?.value
        if backend == .postgresql, postgresqlURL?.isEmpty ?? true, let located = self.raw("store", "backend") {
            throw self.failure(located, "store", "backend", "postgresql needs [store] postgresql_url")
        }
        var store = StoreConfiguration(
            databaseFile: self.resolvedPath(
                self.substitute(self.raw("store", "database_file")?.value ?? "{rundir}/p8.sqlite"),
                default: "{rundir}/p8.sqlite"
            ),
            synchronous: synchronous,
            defaultRetention: retention,
            retentionOverrides: overrides,
            maxTotalBytes: try self.int("store", "max_total_bytes", minimum: 1) ?? 1_000_000_000
        )
        store.backend = backend
        store.postgresqlURL = postgresqlURL
        return store
    }

    /// `PREFIX:items=N:age=S:bytes=B`, every part after the prefix optional (missing ones from `base`).
    private func retentionOverride(
        _ item: String,
        base: RetentionPolicy,
        _ located: Located
    ) throws(ConfigError) -> StoreConfiguration.RetentionOverride {
        let parts = item.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard let prefix = parts.first, !prefix.isEmpty else {
            throw self.failure(located, "store", "retention_overrides", "\"\(item)\" has no channel prefix")
        }
        var policy = base
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, let number = Int(pair[1]), number > 0 else {
                throw self.failure(
                    located,
                    "store",
                    "retention_overrides",
                    "\"\(part)\" in \"\(item)\" is not items=N, age=S or bytes=B with a positive number"
                )
            }
            switch pair[0] {
            case "items": policy.maxItems = number
            case "age": policy.maxAgeSeconds = number
            case "bytes": policy.maxBytes = number
            default:
                throw self.failure(
                    located,
                    "store",
                    "retention_overrides",
                    "unknown limit \"\(pair[0])\" in \"\(item)\" (expected items, age or bytes)"
                )
            }
        }
        return StoreConfiguration.RetentionOverride(channelPrefix: prefix, policy: policy)
    }

    // MARK: - Metrics (the values themselves: ConfigReader+Values.swift)

    /// `prometheus_port` and `prometheus_prefix`, from `[proxy]` or else `[handler]` (see ``MetricsConfiguration``).
    private func readMetrics() throws(ConfigError) -> MetricsConfiguration {
        var metrics = MetricsConfiguration()
        for section in ["handler", "proxy"] {
            if let located = self.raw(section, "prometheus_port"), !located.value.isEmpty {
                do {
                    metrics.listen = try ListenAddress(parsing: located.value)
                } catch {
                    throw self.located(error, located, section, "prometheus_port")
                }
            }
            if let prefix = self.string(section, "prometheus_prefix") {
                metrics.prefix = prefix
            }
        }
        return metrics
    }
}
