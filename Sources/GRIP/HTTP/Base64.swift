import Foundation

/// Base64 for the `*-bin` fields of GRIP JSON and `format=base64` keep-alives.
enum Base64 {
    /// Decodes standard base64; padding may be left out and ASCII whitespace (line breaks of MIME-style
    /// encoders) is skipped, any other character is refused. Nil when malformed.
    static func decode(_ text: String) -> [UInt8]? {
        var padded = String(text.unicodeScalars.filter { !" \t\r\n".unicodeScalars.contains($0) })
        let remainder = padded.utf8.count % 4
        if remainder == 1 {
            return nil
        }
        if remainder != 0 && !padded.hasSuffix("=") {
            padded += String(repeating: "=", count: 4 - remainder)
        }
        return Data(base64Encoded: padded).map(Array.init)
    }

    /// Encodes as standard base64 with padding.
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }
}
