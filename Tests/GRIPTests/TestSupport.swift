import Foundation
import GRIP

/// Helpers shared by the GRIP tests.
enum TestSupport {
    /// The directory used as the config directory in pure parse tests.
    static let configDirectory = "/etc/p8"

    /// Parses `text` as if it were `/etc/p8/p-8.conf`, with `files` (absolute path to contents) readable.
    static func parse(_ text: String, files: [String: String] = [:]) throws -> P8Configuration {
        try P8Configuration.parse(
            text: text,
            configDirectory: Self.configDirectory,
            configFile: "/etc/p8/p-8.conf",
            readFile: { files[$0] }
        )
    }

    /// The absolute path of a file in the Fixtures resource directory.
    static func fixturePath(_ name: String) throws -> String {
        guard let directory = Bundle.module.path(forResource: "Fixtures", ofType: nil) else {
            throw FixtureMissing(name: "Fixtures")
        }
        return directory + "/" + name
    }

    /// The contents of a fixture file.
    static func fixture(_ name: String) throws -> String {
        try String(contentsOfFile: try Self.fixturePath(name), encoding: .utf8)
    }

    /// The project's root directory (for the files under config/).
    static var projectRoot: String {
        var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)  // Tests/GRIPTests/TestSupport.swift
        return components.joined(separator: "/")
    }

    struct FixtureMissing: Error {
        var name: String
    }
}
