import Foundation

// WebSocket control messages from backends, Grip-Sig / publish JWTs, and p8ctl's time arguments.

func fuzzWebSocketControl(_ bytes: [UInt8]) {
    guard let message = try? WebSocketControlMessage(json: bytes) else {
        return
    }
    switch message {
    case .subscribe(let channel, _, _), .unsubscribe(let channel):
        require(!channel.isEmpty, "a subscription to a channel without a name")
    case .setMeta(let name, _):
        require(!name.isEmpty, "meta without a name")
    case .session(let id):
        require(id != "", "an empty session id instead of none")
    default:
        break
    }
}

/// The input: a key, an issuer and a token candidate, separated by NUL bytes.
func fuzzGripSignature(_ bytes: [UInt8]) {
    let parts = fields(bytes, count: 3)
    let key = SigningKey(bytes: parts[0])
    let issuer = text(parts.count > 1 ? parts[1] : [])
    let candidate = text(parts.count > 2 ? parts[2] : [])
    let now = 1_800_000_000
    // Arbitrary tokens: a verdict, never a trap; an accepted one is unexpired.
    if let claims = GripSignature.verify(candidate, key: key, now: now) {
        require(claims.exp > now, "an expired token was accepted")
    }
    // A token made here verifies with its key until it expires, and with no other key.
    let expiresAt = now + Int(parts[0].first ?? 1) + 1
    let token = GripSignature.token(issuer: issuer, key: key, expiresAt: expiresAt)
    let claims = GripSignature.verify(token, key: key, now: now)
    require(claims == GripSignature.Claims(exp: expiresAt, iss: issuer), "a signed token does not verify")
    require(GripSignature.verify(token, key: key, now: expiresAt) == nil, "a token verified once expired")
    require(
        GripSignature.verify(token, key: SigningKey(bytes: key.bytes + [0x2A]), now: now) == nil,
        "a token verified with another key"
    )
    // Changing any one character of the signature makes it fail.
    var signature = Array(token.utf8)
    let position = signature.count - 1 - Int(parts[0].last ?? 0) % 43
    signature[position] = signature[position] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
    require(
        GripSignature.verify(text(signature), key: key, now: now) == nil,
        "a token with a changed signature verified: \(text(signature))"
    )
}

func fuzzCtlTime(_ bytes: [UInt8]) {
    let argument = text(bytes)
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    guard let date = TimeFormat.parse(argument, now: now) else {
        return
    }
    // What p8ctl prints in RFC 3339 reads back as the same time (to the millisecond it prints).
    let printed = TimeFormat.rfc3339(date)
    guard let again = TimeFormat.parse(printed, now: now) else {
        fatalError("property does not hold: p8ctl's own time \(printed) (from \(argument)) does not parse")
    }
    require(abs(again.timeIntervalSince(date)) < 0.001, "\(argument) reads as \(printed), which reads as \(again)")
    // A UTC time with seconds names exactly the fields it printed: no field out of range is carried over.
    let trimmed = argument.trimmingCharacters(in: .whitespaces)
    let utf8 = Array(trimmed.utf8)
    if utf8.count == 20, utf8.last == UInt8(ascii: "Z") {
        let fields = String(decoding: utf8[0..<19], as: UTF8.self).replacingOccurrences(of: " ", with: "T")
            .replacingOccurrences(of: "t", with: "T")
        require(printed.hasPrefix(fields), "\(argument) reads as \(printed)")
    }
}
