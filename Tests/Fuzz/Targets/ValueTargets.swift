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
