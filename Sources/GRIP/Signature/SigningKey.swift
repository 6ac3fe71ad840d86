import Foundation

/// A Grip-Sig HMAC secret: `sig_key`, `upstream_key`, `push_in_http_key` and the route option `sig_key`.
///
/// Its description never shows the secret, so a key can be logged or printed by a failing test safely.
package struct SigningKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret bytes.
    package var bytes: [UInt8]

    /// A key from raw bytes.
    package init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// `SigningKey(<n> bytes)`: the length, never the secret.
    package var description: String {
        "SigningKey(\(self.bytes.count) bytes)"
    }

    /// Same as ``description``.
    package var debugDescription: String {
        self.description
    }

    /// Parses Pushpin's key syntax: a plain string (its UTF-8 bytes) or `base64:<standard base64>`.
    ///
    /// - Returns: nil for an empty value (and for `base64:` with nothing after it): P-8 treats an empty key as
    ///   no key, unlike Pushpin 1.36.
    /// - Throws: ``ConfigError`` `invalidSigningKey` for bad base64, `unsupported` for `file:` (read by the config
    /// reader for `p-8.conf` keys, with ``parse(fileContents:)``; not in routes).
    package static func parse(_ text: String) throws(ConfigError) -> SigningKey? {
        if text.hasPrefix("file:") {
            throw ConfigError(
                .unsupported,
                "file: signing keys are not supported in routes; use a plain or base64: secret"
            )
        }
        if text.hasPrefix("base64:") {
            var encoded = String(text.dropFirst("base64:".count))
            if encoded.isEmpty {
                return nil
            }
            while encoded.utf8.count % 4 != 0 {
                encoded += "="
            }
            guard let data = Data(base64Encoded: encoded) else {
                throw ConfigError(.invalidSigningKey, "the text after base64: is not valid base64")
            }
            return data.isEmpty ? nil : SigningKey(bytes: Array(data))
        }
        return text.isEmpty ? nil : SigningKey(bytes: Array(text.utf8))
    }

    /// A secret read from a `file:` key's file: its contents, without the line break that ends the file.
    ///
    /// - Returns: nil for an empty file (no key).
    /// - Throws: ``ConfigError`` `unsupported` for a PEM key (Pushpin signs ES256/RS256 with those; P-8 only
    ///   HS256).
    package static func parse(fileContents: String) throws(ConfigError) -> SigningKey? {
        var contents = Substring(fileContents)
        if contents.hasPrefix("-----BEGIN") {
            throw ConfigError(.unsupported, "PEM keys (ES256/RS256) are not supported; the file must hold a secret")
        }
        if contents.hasSuffix("\r\n") || contents.hasSuffix("\n") {
            // One Character either way ("\r\n" is a single grapheme).
            contents = contents.dropLast()
        }
        return contents.isEmpty ? nil : SigningKey(bytes: Array(contents.utf8))
    }
}
