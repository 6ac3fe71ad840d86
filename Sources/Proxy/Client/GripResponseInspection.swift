import NIOHTTP1

/// Whether GRIP logic takes a backend response over (grip-spec §3.1), checked on NIO's headers without
/// allocating, for every response. The instructions themselves are parsed by `GRIP.Instruct`.
enum GripResponseInspection {
    /// A response is a GRIP response when its media type is `application/grip-instruct` or it carries any
    /// `Grip-*` header, even an unknown one.
    static func isGripResponse(_ head: HTTPResponseHead) -> Bool {
        Self.isInstructForm(head) || head.headers.contains { $0.name.isGripHeaderName }
    }

    /// Whether the media type is `application/grip-instruct` (the JSON instruct form), in any case, with
    /// or without parameters.
    private static func isInstructForm(_ head: HTTPResponseHead) -> Bool {
        guard let contentType = head.headers.first(name: "content-type") else { return false }
        var bytes = contentType.utf8.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }.makeIterator()
        for expected in "application/grip-instruct".utf8 {
            guard let byte = bytes.next(), byte | 0x20 == expected | 0x20 else { return false }
        }
        let next = bytes.next()
        return next == nil || next == UInt8(ascii: ";") || next == UInt8(ascii: " ") || next == UInt8(ascii: "\t")
    }
}
