import Foundation

/// A `postgresql://user[:password]@host[:port]/database[?sslmode=disable|require]` URL, with its password resolved.
///
/// The password comes from the URL (where `{env:NAME}` stands for the environment variable `NAME`), or else from
/// the environment variable `P8_POSTGRESQL_PASSWORD`. ``description`` never shows it.
package struct PostgreSQLURL: Sendable, Hashable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var user: String
    package var password: String?
    package var database: String
    /// Whether the connection must use TLS (`sslmode=require`); the default is a plain connection.
    package var requiresTLS: Bool

    /// The environment variable that gives the password when the URL has none.
    package static let passwordVariable = "P8_POSTGRESQL_PASSWORD"

    /// Parses a URL.
    ///
    /// - Parameters:
    ///   - string: The URL, as configured.
    ///   - environment: The environment `{env:NAME}` and ``passwordVariable`` are read from.
    /// - Throws: ``StoreError/Code/badURL``, with a message that does not repeat the password.
    package init(_ string: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func bad(_ message: String) -> StoreError {
            StoreError(code: .badURL, path: "postgresql_url", message: message)
        }
        let resolved = try Self.substitutingEnvironment(string, environment: environment)
        guard let components = URLComponents(string: resolved),
            let scheme = components.scheme, scheme == "postgresql" || scheme == "postgres"
        else {
            throw bad("not a postgresql://user@host:port/database URL")
        }
        guard let host = components.host, !host.isEmpty else {
            throw bad("the URL has no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw bad("the URL has no user (postgresql://user@host/database)")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw bad("the URL has no database name (postgresql://user@host/database)")
        }
        var requiresTLS = false
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "disable"), ("sslmode", "prefer"), ("sslmode", "allow"):
                requiresTLS = false
            case ("sslmode", "require"):
                requiresTLS = true
            default:
                throw bad("unsupported URL parameter \(item.name) (only sslmode=disable|require)")
            }
        }
        self.host = host
        self.port = components.port ?? 5432
        self.user = user.removingPercentEncoding ?? user
        self.password =
            components.password.map { $0.removingPercentEncoding ?? $0 } ?? environment[Self.passwordVariable]
        self.database = database.removingPercentEncoding ?? database
        self.requiresTLS = requiresTLS
    }

    /// The URL without its password.
    package var description: String {
        "postgresql://\(self.user)@\(self.host):\(self.port)/\(self.database)"
    }

    /// Replaces each `{env:NAME}` by the variable's value (percent-encoded, so that it is one URL component).
    private static func substitutingEnvironment(_ string: String, environment: [String: String]) throws -> String {
        var result = ""
        var rest = Substring(string)
        while let start = rest.range(of: "{env:") {
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw StoreError(code: .badURL, path: "postgresql_url", message: "unterminated {env:NAME}")
            }
            let name = String(rest[start.upperBound..<end])
            guard let value = environment[name] else {
                throw StoreError(
                    code: .badURL,
                    path: "postgresql_url",
                    message: "the environment variable \(name) named by {env:\(name)} is not set"
                )
            }
            result += rest[..<start.lowerBound]
            result += value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }
}
