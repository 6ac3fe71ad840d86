import Crypto

/// The parts of the WebSocket opening handshake (RFC 6455 §4) that are pure computation.
package enum WebSocketHandshake {
    /// The `Sec-WebSocket-Accept` value answering a client's `Sec-WebSocket-Key`.
    package static func acceptValue(forKey key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Base64.encode(Array(digest))
    }

    /// The GRIP extension in a backend's `Sec-WebSocket-Extensions` values (grip-spec §7.4): nil when absent,
    /// else the message prefix (`m:` unless `message-prefix` says otherwise).
    package static func gripMessagePrefix(extensions values: [String]) -> String? {
        for value in values {
            for offer in HeaderParameters.split(value) ?? [] {
                guard let parameters = HeaderParameters(parsing: offer),
                    parameters.first.name.lowercased() == "grip"
                else {
                    continue
                }
                return parameters.value(of: "message-prefix") ?? "m:"
            }
        }
        return nil
    }
}
