import Foundation
import GRIP
import Testing

@Suite struct GripSignatureTests {
    static let key = SigningKey(bytes: Array("changeme".utf8))

    @Test func knownVector() {
        // Computed with Python's hmac/hashlib/base64 modules; matches the token seen on the wire (grip-spec §2.5).
        let token = GripSignature.token(issuer: "pushpin", key: Self.key, expiresAt: 1_795_552_372)
        #expect(
            token
                == "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3OTU1NTIzNzIsImlzcyI6InB1c2hwaW4ifQ"
                + ".-1FSU97F8y8Gcr-Om-XBRMu54nLJFEo7_E9MoDBHmjQ"
        )
    }

    @Test func issuerIsJSONEscaped() {
        let token = GripSignature.token(
            issuer: #"a"b\c"#,
            key: SigningKey(bytes: Array("secret".utf8)),
            expiresAt: 2_000_000_000
        )
        #expect(
            token
                == "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjIwMDAwMDAwMDAsImlzcyI6ImFcImJcXGMifQ"
                + ".2-_Qfwo3mdymX628z-4_5IVjUg8XKwSTHaJU6FxqF68"
        )
    }

    @Test func structure() throws {
        let token = GripSignature.token(issuer: "iss", key: Self.key, expiresAt: 42)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3)
        #expect(!token.contains("="))
        #expect(!token.contains("+"))
        #expect(!token.contains("/"))
        #expect(try Self.decode(parts[0]) == #"{"typ":"JWT","alg":"HS256"}"#)
        #expect(try Self.decode(parts[1]) == #"{"exp":42,"iss":"iss"}"#)
    }

    @Test func verifyRoundTrip() {
        let token = GripSignature.token(issuer: "pushpin", key: Self.key, expiresAt: 2000)
        #expect(
            GripSignature.verify(token, key: Self.key, now: 1999) == GripSignature.Claims(exp: 2000, iss: "pushpin")
        )
    }

    @Test func rejectsExpired() {
        let token = GripSignature.token(issuer: "pushpin", key: Self.key, expiresAt: 2000)
        #expect(GripSignature.verify(token, key: Self.key, now: 2000) == nil)
        #expect(GripSignature.verify(token, key: Self.key, now: 3000) == nil)
    }

    @Test func rejectsWrongKey() {
        let token = GripSignature.token(issuer: "pushpin", key: Self.key, expiresAt: 2000)
        #expect(GripSignature.verify(token, key: SigningKey(bytes: Array("other".utf8)), now: 0) == nil)
    }

    @Test func rejectsAlgNone() {
        let header = Self.encode(#"{"typ":"JWT","alg":"none"}"#)
        let claims = Self.encode(#"{"exp":2000,"iss":"pushpin"}"#)
        #expect(GripSignature.verify("\(header).\(claims).", key: Self.key, now: 0) == nil)
        // A correct HS256 signature under a header that claims another algorithm is refused too.
        let good = GripSignature.token(issuer: "pushpin", key: Self.key, expiresAt: 2000).split(separator: ".")
        #expect(GripSignature.verify("\(header).\(good[1]).\(good[2])", key: Self.key, now: 0) == nil)
    }

    @Test func rejectsTamperedAndMalformed() {
        let token = GripSignature.token(issuer: "pushpin", key: Self.key, expiresAt: 2000)
        let parts = token.split(separator: ".")
        let otherClaims = Self.encode(#"{"exp":9999999999,"iss":"pushpin"}"#)
        #expect(GripSignature.verify("\(parts[0]).\(otherClaims).\(parts[2])", key: Self.key, now: 0) == nil)
        #expect(GripSignature.verify("abc", key: Self.key, now: 0) == nil)
        #expect(GripSignature.verify("a.b.c.d", key: Self.key, now: 0) == nil)
        #expect(GripSignature.verify("", key: Self.key, now: 0) == nil)
    }

    @Test("a signature whose unused trailing bits were changed is refused (found by fuzzing)")
    func rejectsNonCanonicalSignature() throws {
        let token = GripSignature.token(issuer: "pushpin", key: Self.key, expiresAt: 2_000_000_000)
        #expect(GripSignature.verify(token, key: Self.key, now: 1_900_000_000) != nil)
        // 32 bytes take 43 base64url characters: the last one carries 4 bits and 2 unused ones.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let lastCharacter = try #require(token.last)
        let last = try #require(alphabet.firstIndex(of: lastCharacter))
        let altered = String(token.dropLast()) + String(alphabet[last ^ 1])
        #expect(GripSignature.verify(altered, key: Self.key, now: 1_900_000_000) == nil)
    }

    @Test func verifiesForeignTokenWithoutIssuer() {
        // Signed with Python's hmac module (PyJWT's header order, no iss claim).
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjIwMDB9.Jerzjnl-6FAeQ3fo6SUNC9vi2CMS2_Vf71saannhpdk"
        #expect(GripSignature.verify(token, key: Self.key, now: 0) == GripSignature.Claims(exp: 2000, iss: nil))
    }

    @Test func signingKeyParsing() throws {
        #expect(try SigningKey.parse("changeme") == SigningKey(bytes: Array("changeme".utf8)))
        #expect(try SigningKey.parse("base64:c2VjcmV0") == SigningKey(bytes: Array("secret".utf8)))
        #expect(try SigningKey.parse("base64:c2VjcmV0MQ") == SigningKey(bytes: Array("secret1".utf8)))
        #expect(try SigningKey.parse("") == nil)
        #expect(try SigningKey.parse("base64:") == nil)
        #expect(throws: ConfigError.self) { try SigningKey.parse("base64:***") }
        let error = #expect(throws: ConfigError.self) { try SigningKey.parse("file:key.pem") }
        #expect(error?.code == .unsupported)
        #expect(error?.description.contains("not supported") == true)
    }

    @Test func keyDescriptionHidesTheSecret() {
        let key = SigningKey(bytes: Array("changeme".utf8))
        #expect(key.description == "SigningKey(8 bytes)")
        #expect(!String(describing: key).contains("changeme"))
        #expect(!String(reflecting: key).contains("changeme"))
    }

    static func decode(_ part: Substring) throws -> String {
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 {
            text += "="
        }
        let data = try #require(Data(base64Encoded: text))
        return String(decoding: data, as: UTF8.self)
    }

    static func encode(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
