import NIOHTTP1

/// What the proxy needs to know about a backend response to decide whether GRIP logic takes it over
/// (grip-spec §3.1). The instructions themselves are parsed by the GRIP handler.
enum GripResponseInspection {
    /// A response is a GRIP response when its media type is `application/grip-instruct` or it carries any
    /// `Grip-*` header, even an unknown one.
    static func isGripResponse(_ head: HTTPResponseHead) -> Bool {
        Self.isInstructForm(head) || head.headers.contains { $0.name.isGripHeaderName }
    }

    /// Whether the response asks for more than a direct answer: a hold, a next link, or the JSON form.
    static func needsHandler(_ head: HTTPResponseHead) -> Bool {
        Self.isInstructForm(head) || head.headers.contains(name: "grip-hold")
            || head.headers.contains(name: "grip-link")
    }

    /// The head of a direct answer to a GRIP response without hold or link: the backend's status (or
    /// `Grip-Status`), its headers less `Grip-*` and hop-by-hop ones, and a recomputed `Content-Length`.
    static func directAnswerHead(_ head: HTTPResponseHead, bodyLength: Int, version: HTTPVersion) -> HTTPResponseHead {
        var status = head.status
        if let gripStatus = head.headers.first(name: "grip-status"), let parsed = Self.parseStatus(gripStatus) {
            status = parsed
        }
        var headers = head.headers
        headers.removeGripHeaders()
        HopByHopHeaders.remove(from: &headers)
        headers.remove(name: "content-encoding")
        headers.replaceOrAdd(name: "Content-Length", value: String(bodyLength))
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }

    /// `Grip-Status: <code>[ <reason>]`.
    static func parseStatus(_ value: String) -> HTTPResponseStatus? {
        let trimmed = value.trimmingPrefix(while: \.isWhitespace)
        let codeText = trimmed.prefix { $0.isNumber }
        guard let code = Int(codeText), (100...999).contains(code) else { return nil }
        let reason = trimmed.dropFirst(codeText.count).trimmingPrefix(while: \.isWhitespace)
        return reason.isEmpty
            ? HTTPResponseStatus(statusCode: code) : .custom(code: UInt(code), reasonPhrase: String(reason))
    }

    /// Whether the media type is `application/grip-instruct` (the JSON instruct form), in any case, with
    /// or without parameters.
    static func isInstructForm(_ head: HTTPResponseHead) -> Bool {
        guard let contentType = head.headers.first(name: "content-type") else { return false }
        var bytes = contentType.utf8.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }.makeIterator()
        for expected in "application/grip-instruct".utf8 {
            guard let byte = bytes.next(), byte | 0x20 == expected | 0x20 else { return false }
        }
        let next = bytes.next()
        return next == nil || next == UInt8(ascii: ";") || next == UInt8(ascii: " ") || next == UInt8(ascii: "\t")
    }
}
