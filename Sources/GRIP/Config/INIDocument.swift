/// An INI document as Pushpin's config files use it: `[section]` headers, `key=value` lines, full-line
/// comments starting with `;` or `#`, surrounding whitespace trimmed. As in Qt's QSettings, a `;` outside
/// double quotes also ends a value (the rest of the line is a comment); quote values that contain `;`.
///
/// Keys before the first section header belong to the section `""`. A value wrapped in double quotes has the
/// quotes removed. Malformed lines are skipped and reported in ``warnings``; parsing never fails.
package struct INIDocument: Sendable, Hashable {
    /// One `key=value` line.
    package struct Entry: Sendable, Hashable {
        /// The section the key appeared in (`""` before any header).
        package var section: String
        /// The key, trimmed.
        package var key: String
        /// The value, trimmed, surrounding double quotes removed.
        package var value: String
        /// The 1-based line number.
        package var line: Int
    }

    /// Every `key=value` line in file order (a repeated key appears several times; the last one wins in
    /// ``value(section:key:)``).
    package var entries: [Entry]
    /// Section names in order of first appearance, including empty sections.
    package var sections: [String]
    /// One message per malformed line, e.g. `line 4: expected key=value or [section], got "foo"`.
    package var warnings: [String]

    /// Parses `text`; never fails.
    package init(parsing text: String) {
        self.entries = []
        self.sections = []
        self.warnings = []
        var section = ""
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = rawLine.trimmingINIWhitespace()
            if line.isEmpty || line.hasPrefix(";") || line.hasPrefix("#") {
                continue
            }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count >= 2 else {
                    self.warnings.append("line \(lineNumber): malformed section header \"\(line)\"")
                    continue
                }
                section = String(line.dropFirst().dropLast()).trimmingINIWhitespace()
                if !self.sections.contains(section) {
                    self.sections.append(section)
                }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                self.warnings.append("line \(lineNumber): expected key=value or [section], got \"\(line)\"")
                continue
            }
            let key = line[..<equals].trimmingINIWhitespace()
            guard !key.isEmpty else {
                self.warnings.append("line \(lineNumber): missing key before \"=\"")
                continue
            }
            var value = Self.withoutComment(line[line.index(after: equals)...]).trimmingINIWhitespace()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            self.entries.append(Entry(section: section, key: key, value: value, line: lineNumber))
        }
    }

    /// `value` up to the first `;` outside double quotes (QSettings treats the rest of the line as a comment).
    private static func withoutComment(_ value: Substring) -> Substring {
        var inQuotes = false
        for index in value.indices {
            switch value[index] {
            case "\"":
                inQuotes.toggle()
            case ";" where !inQuotes:
                return value[..<index]
            default:
                continue
            }
        }
        return value
    }

    /// The last entry for `key` in `section`, or nil.
    package func value(section: String, key: String) -> Entry? {
        self.entries.last { $0.section == section && $0.key == key }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    func trimmingINIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = self.firstIndex(where: { !isSpace($0) }) else {
            return ""
        }
        let last = self.lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
