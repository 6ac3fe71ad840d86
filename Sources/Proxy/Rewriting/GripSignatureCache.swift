import GRIP
import Synchronization

/// Grip-Sig tokens, made fresh every second: the token's only varying claim is `exp` (now + 3600, in whole
/// seconds), so every request in the same second would get byte-identical tokens anyway.
final class GripSignatureCache: Sendable {
    private struct Key: Hashable {
        var issuer: String
        var key: SigningKey
    }

    private struct Entry {
        var second: Int
        var token: String
    }

    private let entries = Mutex<[Key: Entry]>([:])

    /// Lifetime of a token, as Pushpin.
    static let lifetimeSeconds = 3600

    func token(issuer: String, key: SigningKey, now: Int) -> String {
        let cacheKey = Key(issuer: issuer, key: key)
        if let cached = self.entries.withLock({ $0[cacheKey] }), cached.second == now {
            return cached.token
        }
        let token = GripSignature.token(issuer: issuer, key: key, expiresAt: now + Self.lifetimeSeconds)
        self.entries.withLock { $0[cacheKey] = Entry(second: now, token: token) }
        return token
    }
}
