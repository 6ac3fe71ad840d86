// JSON, tnetstring and WebSocket-events: every value that parses re-encodes and parses back to itself.

func fuzzJSON(_ bytes: [UInt8]) {
    guard let value = JSONValue.parse(bytes) else {
        return
    }
    let encoded = value.encoded()
    guard let again = JSONValue.parse(encoded) else {
        fatalError("property does not hold: encoded JSON does not parse: \(text(encoded))")
    }
    require(again == value, "JSON changes through encoding: \(text(encoded))")
    require(again.encoded() == encoded, "JSON encoding is not stable: \(text(encoded))")
}

func fuzzTNetString(_ bytes: [UInt8]) {
    let value: TNetString
    do {
        value = try TNetString.decode(bytes)
    } catch {
        require(error.offset >= 0 && error.offset <= bytes.count, "error offset \(error.offset) outside the input")
        return
    }
    let encoded = value.encoded()
    let again: TNetString
    do {
        again = try TNetString.decode(encoded)
    } catch {
        fatalError("property does not hold: encoded tnetstring does not decode (\(error)): \(text(encoded))")
    }
    // Compared as bytes: a float NaN is not equal to itself.
    require(again.encoded() == encoded, "tnetstring changes through encoding: \(text(encoded))")
}

func fuzzWebSocketEvents(_ bytes: [UInt8]) {
    let events: [WebSocketEvent]
    do {
        events = try WebSocketEvent.decode(bytes)
    } catch {
        return
    }
    let encoded = WebSocketEvent.encode(events)
    do {
        let again = try WebSocketEvent.decode(encoded)
        require(again == events, "WebSocket events change through encoding: \(text(encoded))")
    } catch {
        fatalError("property does not hold: encoded WebSocket events do not decode (\(error)): \(text(encoded))")
    }
}

/// The input: a `body-patch` operations array and a held response's body, separated by a NUL byte.
func fuzzJSONPatch(_ bytes: [UInt8]) {
    let parts = fields(bytes, count: 2)
    guard case .array(let operations)? = JSONValue.parse(parts[0]) else {
        return
    }
    let body = parts.count > 1 ? parts[1] : []
    guard let patched = try? JSONPatch.apply(operations, toBody: body) else {
        return
    }
    let withoutLineEnd = Array(patched.prefix { $0 != 0x0A && $0 != 0x0D })
    guard let document = JSONValue.parse(withoutLineEnd) else {
        fatalError("property does not hold: a patched body is not JSON: \(text(patched))")
    }
    // The result passes a `test` of itself, and no operations leave a body as it was (re-encoded).
    let test = JSONValue.object(["op": .string("test"), "path": .string(""), "value": document])
    require((try? JSONPatch.apply([test], to: document)) == document, "a patched body fails a test of itself")
    if let original = JSONValue.parse(body), (try? JSONPatch.apply([], to: original)) != original {
        fatalError("property does not hold: an empty patch changes the body")
    }
}
