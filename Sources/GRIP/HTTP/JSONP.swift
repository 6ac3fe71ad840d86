/// JSON-P (grip-spec §2.9): a `GET` carrying a callback parameter becomes the request its `_method`, `_headers` and
/// `_body` (or `jsonp_body`) parameters describe, and the answer is wrapped in a call of the callback.
package struct JSONPRequest: Sendable, Equatable {
    /// The method to send to the backend.
    package var method: String
    /// The request target without the JSON-P parameters (a trailing `?` is dropped).
    package var originForm: String
    /// The request headers to send: the `_headers` ones first, then the client's (minus `Host`/`Accept`
    /// duplicates), with `Accept: */*`.
    package var headers: [HeaderField]
    /// The request body (`_body` or the `jsonp_body` parameter); nil when none.
    package var body: [UInt8]?
    /// The callback to wrap the response in.
    package var callback: String
    package var mode: JSONPConfig.Mode

    /// Why a JSON-P request is refused; ``message`` is the `400` body Pushpin sends.
    package struct Invalid: Error, Equatable {
        package var message: String
    }

    /// The JSON-P form of a request, or nil when it is not one (not a `GET`, or neither the callback parameter
    /// nor the default callback with the body parameter is present).
    ///
    /// - Throws: ``Invalid`` when a JSON-P parameter is malformed.
    package static func parse(
        method: String,
        originForm: String,
        headers: [HeaderField],
        config: JSONPConfig
    ) throws(Invalid) -> JSONPRequest? {
        guard method == "GET" else { return nil }
        let queryStart = originForm.firstIndex(of: "?")
        let path = queryStart.map { String(originForm[..<$0]) } ?? originForm
        var items = queryStart.map { QueryItem.split(String(originForm[originForm.index(after: $0)...])) } ?? []
        func take(_ name: String) -> String?? {
            guard let index = items.firstIndex(where: { $0.name == name }) else { return nil }
            let value = items[index].value
            items.removeAll { $0.name == name }
            return .some(value)
        }
        let hasBodyParameter = config.bodyParameter.map { name in items.contains { $0.name == name } } ?? false
        let callback: String
        if let value = take(config.callbackParameter) {
            guard let value, Self.isValidCallback(value) else {
                throw Invalid(message: "Invalid callback parameter.")
            }
            callback = value
        } else if let defaultCallback = config.defaultCallback, !defaultCallback.isEmpty, hasBodyParameter {
            callback = defaultCallback
        } else {
            return nil
        }
        var newMethod = config.defaultMethod
        if let value = take("_method") {
            guard let value, !value.isEmpty, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw Invalid(message: "Invalid _method parameter.")
            }
            newMethod = value
        }
        var newHeaders: [HeaderField] = []
        if let value = take("_headers") {
            guard let text = value, case .object(let members)? = JSONValue.parse(Array(text.utf8)) else {
                throw Invalid(message: "Invalid _headers parameter.")
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                guard let headerValue = member.stringValue, HeaderField.isValidName(name),
                    HeaderField.isValidValue(headerValue)
                else {
                    throw Invalid(message: "Invalid _headers parameter.")
                }
                if !name.equalsIgnoringASCIICase("host") && !name.equalsIgnoringASCIICase("accept") {
                    newHeaders.append(HeaderField(name: name, value: headerValue))
                }
            }
        }
        var body: [UInt8]?
        if let bodyParameter = config.bodyParameter {
            if let value = take(bodyParameter) {
                guard let value else { throw Invalid(message: "Invalid body parameter.") }
                body = Array(value.utf8)
                newHeaders.removeAll { $0.hasName("Content-Type") }
                newHeaders.append(HeaderField(name: "Content-Type", value: "application/json"))
            }
        } else if let value = take("_body") {
            guard let value else { throw Invalid(message: "Invalid _body parameter.") }
            body = Array(value.utf8)
        }
        newHeaders.append(HeaderField(name: "Accept", value: "*/*"))
        for field in headers where !field.hasName("accept") {
            if !newHeaders.contains(where: { $0.hasName(field.name) }) {
                newHeaders.append(field)
            }
        }
        let query = items.map(\.raw).joined(separator: "&")
        return JSONPRequest(
            method: newMethod,
            originForm: query.isEmpty ? path : path + "?" + query,
            headers: newHeaders,
            body: body,
            callback: callback,
            mode: config.mode
        )
    }

    /// A callback must be a (dotted) JavaScript name, so that the wrapped response cannot inject script.
    static func isValidCallback(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == 0x5F
                    || byte == 0x24 || byte == 0x2E
            }
    }
}

/// One `name=value` item of a query string; name and value percent-decoded (nil value when undecodable).
struct QueryItem {
    var raw: Substring
    var name: String
    var value: String?

    static func split(_ query: String) -> [QueryItem] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { raw in
            let equals = raw.firstIndex(of: "=")
            let name = equals.map { raw[..<$0] } ?? raw
            let value = equals.map { raw[raw.index(after: $0)...] } ?? ""
            return QueryItem(
                raw: raw,
                name: Self.percentDecoded(name) ?? String(name),
                value: Self.percentDecoded(value)
            )
        }
    }

    /// `%XX` decoded (`+` is kept, as Pushpin keeps it); nil for a bad escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Wraps a response, which may arrive in pieces (a stream), in a JSON-P callback.
package struct JSONPResponseEncoder: Sendable {
    /// Response headers mirrored on the wrapping response.
    static let mirroredHeaders = ["Cache-Control"]

    private let callback: String
    private let mode: JSONPConfig.Mode
    /// Basic mode: a trailing newline held back, dropped if the body ends there.
    private var heldNewline: [UInt8] = []

    package init(callback: String, mode: JSONPConfig.Mode) {
        self.callback = callback
        self.mode = mode
    }

    /// The wrapping response's headers (it is always `200 OK`) and the bytes that open the call.
    package func start(code: Int, reason: String, headers: [HeaderField]) -> (headers: [HeaderField], prefix: [UInt8]) {
        var outer = [HeaderField(name: "Content-Type", value: "application/javascript")]
        for field in headers where Self.mirroredHeaders.contains(where: { field.hasName($0) }) {
            outer.append(field)
        }
        var prefix = Array("/**/\(self.callback)(".utf8)
        if self.mode == .extended {
            var members: [String: JSONValue] = [:]
            for field in headers where !HeaderField.hopByHopNames.contains(field.name.lowercased()) {
                if members[field.name] == nil {
                    members[field.name] = .string(field.value)
                }
            }
            var reasonJSON: [UInt8] = []
            JSONValue.writeString(reason, to: &reasonJSON)
            prefix += #"{"code": \#(code), "reason": "#.utf8
            prefix += reasonJSON
            prefix += #", "headers": "#.utf8
            prefix += JSONValue.object(members).encoded()
            prefix += #", "body": ""#.utf8
        }
        return (outer, prefix)
    }

    /// The wrapped form of the next body bytes.
    package mutating func body(_ bytes: [UInt8]) -> [UInt8] {
        switch self.mode {
        case .extended:
            return Self.escaped(bytes)
        case .basic:
            var out = self.heldNewline + bytes
            self.heldNewline = []
            if out.last == 0x0A {
                let count = out.count >= 2 && out[out.count - 2] == 0x0D ? 2 : 1
                self.heldNewline = Array(out.suffix(count))
                out.removeLast(count)
            }
            return out
        }
    }

    /// The bytes that close the call.
    package func end() -> [UInt8] {
        Array((self.mode == .extended ? "\"});\n" : ");\n").utf8)
    }

    /// Bytes escaped for the inside of a JSON string (byte by byte, so a UTF-8 sequence split across pieces
    /// stays intact).
    static func escaped(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        JSONValue.writeEscaped(bytes, to: &out)
        return out
    }
}
