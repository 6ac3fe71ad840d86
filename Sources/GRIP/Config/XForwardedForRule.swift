/// An `x_forwarded_for` / `x_forwarded_for_trusted` rule: `truncate:N` and/or `append` (grip-spec §2.5 step 6).
package struct XForwardedForRule: Sendable, Hashable {
    /// Keep only the last N existing entries (0 drops them all); nil keeps them all.
    package var truncate: Int?
    /// Append the client's address.
    package var append: Bool

    /// Creates a rule; the default is the empty rule (header passed through untouched).
    package init(truncate: Int? = nil, append: Bool = false) {
        self.truncate = truncate
        self.append = append
    }

    /// Parses a comma list of `truncate:N` and `append`; the empty string is the empty rule.
    ///
    /// - Throws: ``ConfigError`` with code `invalidValue` on any other item or a bad N.
    package init(parsing text: String) throws(ConfigError) {
        self.init()
        for item in text.split(separator: ",").map({ $0.trimmingINIWhitespace() }) where !item.isEmpty {
            if item == "append" {
                self.append = true
            } else if item.hasPrefix("truncate:") {
                guard let count = Int(item.dropFirst("truncate:".count)), count >= 0 else {
                    throw ConfigError(.invalidValue, "\"\(item)\": truncate needs a count >= 0")
                }
                self.truncate = count
            } else {
                throw ConfigError(.invalidValue, "\"\(item)\" is not truncate:N or append")
            }
        }
    }

    /// True for the empty rule: the proxy then leaves the client's `X-Forwarded-For` headers untouched.
    package var isEmpty: Bool {
        self.truncate == nil && !self.append
    }

    /// The single `X-Forwarded-For` value to send: all `existing` header values split on commas and trimmed,
    /// the last ``truncate`` of them kept, the client address appended if ``append``, joined with `", "`.
    ///
    /// - Returns: nil when no entry remains: send no `X-Forwarded-For` header.
    package func apply(existing: [String], clientAddress: String) -> String? {
        var entries =
            existing
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingINIWhitespace() }
            .filter { !$0.isEmpty }
        if let truncate = self.truncate {
            entries = Array(entries.suffix(truncate))
        }
        if self.append {
            entries.append(clientAddress)
        }
        return entries.isEmpty ? nil : entries.joined(separator: ", ")
    }
}
