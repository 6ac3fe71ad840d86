extension Instruct {
    /// Parses the header form of GRIP instructions (grip-spec §3.2). The body is kept as the response body;
    /// the JSON form is not looked at (``parse(status:reason:headers:body:)`` does both).
    ///
    /// - Parameters:
    ///   - responseStatus: the backend's status code.
    ///   - reason: the backend's reason phrase (empty for the standard one).
    ///   - headers: the backend's headers in order; names are matched ignoring case.
    ///   - body: the backend's body.
    /// - Throws: ``InstructError`` with Pushpin's message.
    package init(
        responseStatus: Int,
        reason: String,
        headers: [(String, String)],
        body: [UInt8]
    ) throws(InstructError) {
        let fields = headers.map(HeaderField.init)
        // Checked in Pushpin's order, so that the first problem reported is the one Pushpin reports.
        let holdMode = try Self.holdMode(fields)
        let channels = try Self.channels(fields)
        let timeout = try Self.timeout(fields)
        let exposeHeaders = try Self.exposeHeaders(fields)
        let keepAlive = try Self.keepAlive(fields)
        let meta = try Self.meta(fields)
        let status = try Self.status(fields)
        let code = status?.code ?? responseStatus
        var responseReason = status.map { $0.reason ?? "" } ?? reason
        if responseReason.isEmpty {
            responseReason = StatusReason.phrase(for: code)
        }
        self.init(
            holdMode: holdMode,
            channels: channels,
            timeout: timeout,
            keepAlive: keepAlive,
            status: status,
            meta: meta,
            exposeHeaders: exposeHeaders,
            response: Response(
                code: code,
                reason: responseReason,
                headers: Self.clientHeaders(fields, exposing: exposeHeaders),
                body: body
            )
        )
        try self.parseLinks(fields)
    }

    /// The first value of the header `name`, trimmed.
    private static func first(_ name: String, in fields: [HeaderField]) -> String? {
        fields.first { $0.hasName(name) }.map(\.value.trimmingSpaces)
    }

    /// Every value of the header `name`, split at commas outside quotes.
    private static func all(_ name: String, in fields: [HeaderField]) -> [String]? {
        var out: [String] = []
        for field in fields where field.hasName(name) {
            guard let parts = HeaderParameters.split(field.value) else {
                return nil
            }
            out += parts
        }
        return out
    }

    /// `Grip-Hold: response | stream`.
    private static func holdMode(_ fields: [HeaderField]) throws(InstructError) -> HoldMode {
        guard let value = Self.first("Grip-Hold", in: fields) else {
            return .none
        }
        switch value {
        case "response": return .response
        case "stream": return .stream
        default: throw InstructError(.invalidHoldMode, "Grip-Hold must be set to either 'response' or 'stream'")
        }
    }

    /// `Grip-Channel: <name>[; prev-id=<id>][; filter=<f>]...`, repeated or comma-separated.
    private static func channels(_ fields: [HeaderField]) throws(InstructError) -> [Channel] {
        let failed = InstructError(.invalidChannel, "failed to parse Grip-Channel")
        var channels: [Channel] = []
        let values = fields.filter { $0.hasName("Grip-Channel") }
        for field in values {
            guard let parts = HeaderParameters.split(field.value), !parts.isEmpty else {
                throw failed
            }
            for part in parts {
                guard let parameters = HeaderParameters(parsing: part), !parameters.first.name.isEmpty else {
                    throw failed
                }
                channels.append(
                    Channel(
                        name: parameters.first.name,
                        prevID: parameters.value(of: "prev-id"),
                        filters: parameters.values(of: "filter")
                    )
                )
            }
        }
        return channels
    }

    /// `Grip-Timeout: <seconds>`: default 55, raised to at least 5.
    private static func timeout(_ fields: [HeaderField]) throws(InstructError) -> Int {
        guard let value = Self.first("Grip-Timeout", in: fields) else {
            return Self.defaultTimeout
        }
        guard let seconds = Self.integer(value) else {
            throw InstructError(.invalidTimeout, "failed to parse Grip-Timeout")
        }
        guard seconds >= 0 else {
            throw InstructError(.invalidTimeout, "Grip-Timeout has invalid value")
        }
        return max(seconds, Self.minimumTimeout)
    }

    /// `Grip-Keep-Alive: <data>[; format=raw|cstring|base64][; timeout=<s>][; mode=idle|interval]` (the first
    /// header only, not split at commas: the data may contain them).
    private static func keepAlive(_ fields: [HeaderField]) throws(InstructError) -> KeepAlive? {
        guard let value = Self.first("Grip-Keep-Alive", in: fields) else {
            return nil
        }
        guard let parameters = HeaderParameters(parsing: value) else {
            throw InstructError(.invalidKeepAlive, "failed to parse Grip-Keep-Alive")
        }
        let raw = parameters.first.name
        guard !raw.isEmpty else {
            throw InstructError(.invalidKeepAlive, "Grip-Keep-Alive cannot be empty")
        }
        let mode: KeepAlive.Mode
        switch parameters.value(of: "mode") ?? "" {
        case "", "idle": mode = .idle
        case "interval": mode = .interval
        case let other: throw InstructError(.invalidKeepAlive, "no such Grip-Keep-Alive mode '\(other)'")
        }
        var timeout = Self.defaultKeepAliveTimeout
        if let text = parameters.value(of: "timeout") {
            guard let seconds = Self.integer(text) else {
                throw InstructError(.invalidKeepAlive, "failed to parse Grip-Keep-Alive timeout value")
            }
            guard seconds >= 0 else {
                throw InstructError(.invalidKeepAlive, "Grip-Keep-Alive timeout has invalid value")
            }
            timeout = max(seconds, Self.minimumKeepAliveTimeout)
        }
        let data: [UInt8]
        switch parameters.value(of: "format") ?? "" {
        case "", "raw":
            data = Array(raw.utf8)
        case "cstring":
            guard let unescaped = Self.unescapeCString(raw) else {
                throw InstructError(.invalidKeepAlive, "failed to parse Grip-Keep-Alive cstring format")
            }
            data = unescaped
        case "base64":
            guard let decoded = Base64.decode(raw) else {
                throw InstructError(.invalidKeepAlive, "failed to parse Grip-Keep-Alive base64 format")
            }
            data = decoded
        case let other:
            throw InstructError(.invalidKeepAlive, "no such Grip-Keep-Alive format '\(other)'")
        }
        guard !data.isEmpty else {
            // `\1` in cstring format decodes to nothing: a keep-alive that would send no bytes.
            throw InstructError(.invalidKeepAlive, "Grip-Keep-Alive cannot be empty")
        }
        return KeepAlive(data: data, timeout: timeout, mode: mode)
    }

    /// `format=cstring`: `\\`, `\r`, `\n` and `\xHH` are unescaped, any other escape is dropped (as Pushpin
    /// does); nil for a trailing lone `\` or bad hex digits.
    static func unescapeCString(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < bytes.count else {
                return nil
            }
            switch bytes[index + 1] {
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
            case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
            case UInt8(ascii: "x"):
                guard index + 3 < bytes.count, let high = Self.hexDigit(bytes[index + 2]),
                    let low = Self.hexDigit(bytes[index + 3])
                else {
                    return nil
                }
                out.append(high << 4 | low)
                index += 2
            default: break
            }
            index += 2
        }
        return out
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `Grip-Link: <URI>; rel=next[; timeout=<s>]` and `rel=gone`; links without parameters or with another
    /// `rel` are ignored.
    private mutating func parseLinks(_ fields: [HeaderField]) throws(InstructError) {
        guard let values = Self.all("Grip-Link", in: fields) else {
            throw InstructError(.invalidLink, "failed to parse Grip-Link value")
        }
        for value in values {
            guard let parameters = HeaderParameters(parsing: value) else {
                throw InstructError(.invalidLink, "failed to parse Grip-Link value")
            }
            guard !parameters.parameters.isEmpty else {
                continue
            }
            let bracketed = parameters.first.name
            guard bracketed.utf8.count > 2, bracketed.hasPrefix("<"), bracketed.hasSuffix(">") else {
                throw InstructError(.invalidLink, "failed to parse Grip-Link value")
            }
            let uri = String(bracketed.dropFirst().dropLast())
            guard Self.isValidURIReference(uri) else {
                throw InstructError(.invalidLink, "Grip-Link contains invalid link")
            }
            switch parameters.value(of: "rel") {
            case "next":
                var timeout = Self.defaultNextLinkTimeout
                if let text = parameters.value(of: "timeout") {
                    guard let seconds = Self.integer(text) else {
                        throw InstructError(.invalidLink, "failed to parse Grip-Link timeout value")
                    }
                    guard seconds >= 0 else {
                        throw InstructError(.invalidLink, "Grip-Link timeout has invalid value")
                    }
                    timeout = seconds
                }
                self.nextLink = Link(uri: uri, timeout: timeout)
            case "gone":
                self.goneLink = uri
            default:
                continue
            }
        }
    }

    /// Whether `text` is made only of RFC 3986 URI-reference characters, with well-formed `%XX` escapes.
    static func isValidURIReference(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, Self.hexDigit(bytes[index + 1]) != nil,
                    Self.hexDigit(bytes[index + 2]) != nil
                else {
                    return false
                }
                index += 3
                continue
            }
            let allowed =
                HeaderField.isTokenByte(byte) && byte != UInt8(ascii: "^") && byte != UInt8(ascii: "`")
                && byte != UInt8(ascii: "|") || ":/?#[]@()*,;=".utf8.contains(byte)
            guard allowed else {
                return false
            }
            index += 1
        }
        return true
    }

    /// `Grip-Status: <code>[ <reason>]` (the first header).
    private static func status(_ fields: [HeaderField]) throws(InstructError) -> Status? {
        guard let value = Self.first("Grip-Status", in: fields), !value.isEmpty else {
            return nil
        }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        guard let code = Self.integer(String(parts[0])), Self.statusCodes.contains(code) else {
            throw InstructError(.invalidStatus, "Grip-Status contains invalid status code")
        }
        let reason = parts.count > 1 ? String(parts[1]).trimmingSpaces : ""
        return Status(code: code, reason: reason.isEmpty ? nil : reason)
    }

    /// Status codes P-8 sends (Pushpin allows 0-99 too, which no client can read as a status).
    static let statusCodes = 100...999

    /// `Grip-Set-Meta: <name>=<value>[, <name2>=<value2>]`, values possibly quoted.
    private static func meta(_ fields: [HeaderField]) throws(InstructError) -> [String: String] {
        let empty = InstructError(.invalidMeta, "Grip-Set-Meta cannot be empty")
        var meta: [String: String] = [:]
        for field in fields where field.hasName("Grip-Set-Meta") {
            guard let parts = HeaderParameters.split(field.value), !parts.isEmpty else {
                throw empty
            }
            for part in parts {
                guard let parameters = HeaderParameters(parsing: part, firstIsPair: true),
                    !parameters.first.name.isEmpty
                else {
                    throw empty
                }
                meta[parameters.first.name] = parameters.first.value ?? ""
            }
        }
        return meta
    }

    /// `Grip-Expose-Headers: <Name>[, <Name>...]`.
    private static func exposeHeaders(_ fields: [HeaderField]) throws(InstructError) -> [String] {
        guard let names = Self.all("Grip-Expose-Headers", in: fields) else {
            throw InstructError(.invalidHeader, "failed to parse Grip-Expose-Headers")
        }
        return names
    }

    /// The backend headers the client may see: no `Grip-*`, no hop-by-hop headers (nor those `Connection`
    /// names), no `Content-Length` (recomputed or omitted by the proxy), no `Content-Encoding`; with
    /// `Grip-Expose-Headers`, only the exposed ones.
    static func clientHeaders(_ fields: [HeaderField], exposing exposed: [String]) -> [HeaderField] {
        var dropped = HeaderField.hopByHopNames.union(["content-length", "content-encoding"])
        for field in fields where field.hasName("connection") {
            for name in field.value.split(separator: ",") {
                dropped.insert(String(name).trimmingSpaces.lowercasedASCII)
            }
        }
        return fields.filter { field in
            !field.isGrip && !dropped.contains(field.name.lowercasedASCII)
                && (exposed.isEmpty || exposed.contains { field.hasName($0) })
        }
    }

    /// A decimal integer with an optional sign; nil when malformed or out of range.
    static func integer(_ text: String) -> Int? {
        Int(text.trimmingSpaces)
    }
}
