/// A configuration or routes value P-8 cannot use. Thrown by the config parser, `ListenAddress(parsing:)`,
/// `SigningKey.parse(_:)` and `XForwardedForRule(parsing:)`; `description` says what is wrong and where.
package struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is.
    package enum Code: String, Sendable, Hashable {
        /// The config file (or the routes file) could not be read.
        case fileNotReadable
        /// A value does not have the expected form (not a number, not a boolean, out of range...).
        case invalidValue
        /// A listen address (`http_port`, `--port`) is malformed.
        case invalidListenAddress
        /// A signing key is malformed (for example bad base64).
        case invalidSigningKey
        /// A value uses a Pushpin feature P-8 does not implement (for example `file:` keys).
        case unsupported
    }

    /// What kind of problem this is.
    package var code: Code
    /// The INI section of the offending key, when known.
    package var section: String?
    /// The offending key, when known.
    package var key: String?
    /// The 1-based line of the offending key, when known.
    package var line: Int?
    /// The file the key came from, when known.
    package var file: String?
    /// What is wrong, without the location (for example `"abc" is not an integer`).
    package var message: String

    /// Creates an error; the location fields may be filled in later by the caller that knows them.
    package init(
        _ code: Code,
        _ message: String,
        section: String? = nil,
        key: String? = nil,
        line: Int? = nil,
        file: String? = nil
    ) {
        self.code = code
        self.message = message
        self.section = section
        self.key = key
        self.line = line
        self.file = file
    }

    /// `file:line: [section] key: message`, leaving out the parts that are unknown.
    package var description: String {
        var location = ""
        if let file = self.file {
            location += file
            if let line = self.line {
                location += ":\(line)"
            }
            location += ": "
        } else if let line = self.line {
            location += "line \(line): "
        }
        if let key = self.key {
            location += self.section.map { "[\($0)] \(key): " } ?? "\(key): "
        }
        return "\(location)\(self.message)"
    }
}
