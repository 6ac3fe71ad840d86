import Crypto
import Foundation

/// Grip-Sig tokens: the HS256 JWT a GRIP proxy sends to backends (grip-spec §2.5), also used to recognise a
/// trusted upstream proxy (`upstream_key`) and to authenticate the publish API (`push_in_http_key`).
package enum GripSignature {
    /// The claims P-8 reads from a token.
    package struct Claims: Sendable, Hashable {
        /// Expiry, seconds since 1970.
        package var exp: Int
        /// Issuer, when present.
        package var iss: String?

        /// Creates claims.
        package init(exp: Int, iss: String?) {
            self.exp = exp
            self.iss = iss
        }
    }

    /// The JWT Pushpin sends: header `{"typ":"JWT","alg":"HS256"}`, claims `{"exp":N,"iss":"..."}`, base64url
    /// without padding, HMAC-SHA256 with `key`.
    ///
    /// - Parameters:
    ///   - issuer: the `iss` claim (JSON-escaped here).
    ///   - key: the HMAC secret.
    ///   - expiresAt: the `exp` claim, seconds since 1970 (Pushpin uses now + 3600).
    package static func token(issuer: String, key: SigningKey, expiresAt: Int) -> String {
        let header = Self.base64URL(Array(#"{"typ":"JWT","alg":"HS256"}"#.utf8))
        let claims = Self.base64URL(Array(#"{"exp":\#(expiresAt),"iss":\#(Self.jsonString(issuer))}"#.utf8))
        let signingInput = "\(header).\(claims)"
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(signingInput.utf8),
            using: SymmetricKey(data: key.bytes)
        )
        return "\(signingInput).\(Self.base64URL(Array(mac)))"
    }

    /// Verifies an HS256 token: three base64url parts, header `alg` `HS256`, the signature (compared in
    /// constant time), an integer `exp` later than `now`.
    ///
    /// - Returns: the claims, or nil when anything is wrong (other algorithms including `none` are refused).
    package static func verify(_ token: String, key: SigningKey, now: Int) -> Claims? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerBytes = Self.decodeBase64URL(parts[0]),
            let claimsBytes = Self.decodeBase64URL(parts[1]),
            let signature = Self.decodeBase64URL(parts[2]),
            let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)),
            header.alg == "HS256"
        else {
            return nil
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard
            HMAC<SHA256>.isValidAuthenticationCode(
                signature,
                authenticating: signingInput,
                using: SymmetricKey(data: key.bytes)
            )
        else {
            return nil
        }
        guard let claims = try? JSONDecoder().decode(DecodedClaims.self, from: Data(claimsBytes)),
            claims.exp > now
        else {
            return nil
        }
        return Claims(exp: claims.exp, iss: claims.iss)
    }

    private struct Header: Decodable {
        var alg: String
    }

    private struct DecodedClaims: Decodable {
        var exp: Int
        var iss: String?
    }

    /// `text` as a JSON string literal, escaped as Qt's compact JSON writer does.
    static func jsonString(_ text: String) -> String {
        var out: [UInt8] = []
        JSONValue.writeString(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Base64url without padding.
    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes base64url with or without padding; nil on any other character, and nil unless `text` is the
    /// one encoding of its bytes (unused trailing bits set would let a changed signature verify).
    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !standard.contains("=") || standard.utf8.count % 4 == 0 else {
            return nil
        }
        while standard.utf8.count % 4 != 0 {
            standard += "="
        }
        guard let bytes = Data(base64Encoded: standard).map({ Array($0) }),
            Self.base64URL(bytes) == String(text.prefix { $0 != "=" })
        else {
            return nil
        }
        return bytes
    }
}
