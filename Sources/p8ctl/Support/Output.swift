import Foundation

/// Writes to stdout and stderr without buffering, so that a pipe reader sees each write at once.
enum Output {
    /// Writes `text` to stdout as is.
    static func write(_ text: String) {
        if text.isEmpty {
            return
        }
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes `line` and a newline to stdout.
    static func line(_ line: String) {
        Self.write(line + "\n")
    }

    /// Writes `p8ctl: message` as one line to stderr.
    static func error(_ message: String) {
        let flat = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("p8ctl: \(flat)\n".utf8))
    }
}
