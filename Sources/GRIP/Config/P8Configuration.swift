import Foundation

/// Everything P-8 reads from its Pushpin-compatible config file (`pushpin.conf` format, grip-spec §8), plus
/// P-8's own `[store]` section and keys.
///
/// Paths are absolute, templates (`{rundir}`, `{libdir}`, `{ipc_prefix}`) substituted and `port_offset`
/// applied. Keys P-8 does not know, and Pushpin keys it accepts without acting on them, are reported once
/// each in ``warnings``; bad values make loading fail with a ``ConfigError``.
package struct P8Configuration: Sendable, Hashable {
    /// `[global]`.
    package var global: GlobalConfiguration
    /// `[runner]`.
    package var runner: RunnerConfiguration
    /// `[proxy]`.
    package var proxy: ProxyConfiguration
    /// `[handler]`.
    package var handler: HandlerConfiguration
    /// The Prometheus endpoint (`prometheus_port`, `prometheus_prefix`).
    package var metrics = MetricsConfiguration()
    /// `[store]` (P-8's own).
    package var store: StoreConfiguration
    /// Absolute path of the config file these values came from.
    package var configFile: String
    /// Start-up warnings to log once: malformed lines, a missing include file, unknown keys, keys accepted
    /// but not supported.
    package var warnings: [String]

    /// Creates a configuration from its sections.
    package init(
        global: GlobalConfiguration,
        runner: RunnerConfiguration,
        proxy: ProxyConfiguration,
        handler: HandlerConfiguration,
        store: StoreConfiguration,
        configFile: String,
        warnings: [String] = []
    ) {
        self.global = global
        self.runner = runner
        self.proxy = proxy
        self.handler = handler
        self.store = store
        self.configFile = configFile
        self.warnings = warnings
    }

    /// Parses config text without touching the file system except through `readFile`.
    ///
    /// - Parameters:
    ///   - text: the main config file's contents.
    ///   - configDirectory: absolute directory relative paths are resolved against.
    ///   - configFile: the main file's absolute path for messages (default `<configDirectory>/p-8.conf`).
    ///   - readFile: returns the contents of the file at an absolute path, or nil if it does not exist; used
    ///     for `include=`.
    /// - Throws: ``ConfigError`` `invalidValue` (or `invalidListenAddress`, `invalidSigningKey`,
    ///   `unsupported`) naming the section, key, file and line of the first bad value.
    package static func parse(
        text: String,
        configDirectory: String,
        configFile: String? = nil,
        readFile: (String) -> String?
    ) throws -> P8Configuration {
        try ConfigReader.read(
            text: text,
            configDirectory: ConfigPath.normalize(configDirectory),
            configFile: configFile ?? ConfigPath.resolve("p-8.conf", against: configDirectory),
            readFile: readFile
        )
    }
}

/// Path helpers on plain strings (POSIX paths).
package enum ConfigPath {
    /// `path` made absolute against `directory` and normalised (`.` and `..` removed).
    package static func resolve(_ path: String, against directory: String) -> String {
        path.hasPrefix("/") ? Self.normalize(path) : Self.normalize(directory + "/" + path)
    }

    /// Removes empty, `.` and `..` components of an absolute path.
    package static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/") {
            switch component {
            case ".":
                continue
            case "..":
                _ = components.popLast()
            default:
                components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// The directory part of an absolute path.
    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else {
            return "/"
        }
        return String(path[..<slash])
    }
}
