import Foundation
package import GRIP

// Reading the config file is the runner's, beside the routes file (RoutesLoader.swift): GRIP only parses text.
extension P8Configuration {
    /// Reads and parses the config file at `configFile` (relative to the current directory if not absolute)
    /// and the file its `include=` names.
    ///
    /// - Throws: ``ConfigError``: `fileNotReadable` when the file cannot be read, otherwise as
    ///   ``parse(text:configDirectory:configFile:readFile:)``.
    package static func load(configFile: String) throws -> P8Configuration {
        let absolute = ConfigPath.resolve(configFile, against: FileManager.default.currentDirectoryPath)
        let text: String
        do {
            text = try String(contentsOfFile: absolute, encoding: .utf8)
        } catch {
            throw ConfigError(.fileNotReadable, "cannot read the config file: \(error)", file: absolute)
        }
        return try Self.parse(
            text: text,
            configDirectory: ConfigPath.directory(of: absolute),
            configFile: absolute,
            readFile: { path in try? String(contentsOfFile: path, encoding: .utf8) }
        )
    }

    /// Where `p8` and `p8ctl` look for a config file when none is given, in order (relative to the current
    /// directory).
    package static let defaultConfigFiles = ["p-8.conf", "config/p-8.conf.example"]

    /// The first of ``defaultConfigFiles`` that exists, if any.
    package static func findDefaultConfigFile() -> String? {
        Self.defaultConfigFiles.first { FileManager.default.fileExists(atPath: $0) }
    }
}
