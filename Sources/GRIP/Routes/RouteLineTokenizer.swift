/// One space-separated section of a routes line: `value[,prop[=val]]...`.
struct RouteSection: Sendable, Hashable {
    /// The section's value (empty when the first token was a prop).
    var value: String
    /// The props in line order; a name may repeat.
    var props: [RouteProp]

    /// The last value of `name` (single-valued props: the last one wins), nil when absent.
    func last(_ name: String) -> String? {
        self.props.last { $0.name == name }?.value
    }

    /// Every value of `name` in order.
    func all(_ name: String) -> [String] {
        self.props.filter { $0.name == name }.map(\.value)
    }

    /// Whether `name` appears (boolean flags).
    func has(_ name: String) -> Bool {
        self.props.contains { $0.name == name }
    }
}

/// One `name[=value]` prop; a flag has the value "".
struct RouteProp: Sendable, Hashable {
    var name: String
    var value: String
}

/// Why a routes line was skipped.
struct RouteLineError: Error {
    var message: String

    init(_ message: String) {
        self.message = message
    }
}

/// The routes-file line tokenizer of grip-spec §2.1 (Pushpin's `RoutesFile::parseLine`).
enum RouteLineTokenizer {
    /// Splits `line` into sections; an empty array for blank and comment lines.
    static func sections(of line: String) throws(RouteLineError) -> [RouteSection] {
        var scanner = Scanner(Array(line.unicodeScalars))
        var sections: [RouteSection] = []
        while true {
            scanner.skipSpaces()
            guard let next = scanner.peek, next != "#" else {
                break
            }
            var section = RouteSection(value: "", props: [])
            let first = try scanner.token(stopAtEquals: true)
            if scanner.peek == "=" {
                // A first token with "=" is a prop: the section has an empty value.
                scanner.advance()
                guard !first.isEmpty else {
                    throw RouteLineError("empty prop name")
                }
                section.props.append(RouteProp(name: first, value: try scanner.token(stopAtEquals: false)))
            } else {
                section.value = first
            }
            while scanner.peek == "," {
                scanner.advance()
                let name = try scanner.token(stopAtEquals: true)
                if scanner.peek == "=" {
                    guard !name.isEmpty else {
                        throw RouteLineError("empty prop name")
                    }
                    scanner.advance()
                    section.props.append(RouteProp(name: name, value: try scanner.token(stopAtEquals: false)))
                } else {
                    guard !name.isEmpty else {
                        throw RouteLineError("expecting prop")
                    }
                    section.props.append(RouteProp(name: name, value: ""))
                }
            }
            sections.append(section)
        }
        return sections
    }

    private struct Scanner {
        private let scalars: [Unicode.Scalar]
        private var index = 0

        init(_ scalars: [Unicode.Scalar]) {
            self.scalars = scalars
        }

        var peek: Unicode.Scalar? {
            self.index < self.scalars.count ? self.scalars[self.index] : nil
        }

        mutating func advance() {
            self.index += 1
        }

        mutating func skipSpaces() {
            while let next = self.peek, next == " " || next == "\t" {
                self.advance()
            }
        }

        /// Reads up to `,`, a space, `#`, the end (and `=` if `stopAtEquals`), unquoting `"..."` parts.
        mutating func token(stopAtEquals: Bool) throws(RouteLineError) -> String {
            var out = String.UnicodeScalarView()
            while let next = self.peek {
                if next == "\"" {
                    self.advance()
                    while true {
                        guard let quoted = self.peek else {
                            throw RouteLineError("unterminated quote")
                        }
                        self.advance()
                        if quoted == "\"" {
                            break
                        }
                        if quoted == "\\" {
                            guard let escaped = self.peek, escaped == "\\" || escaped == "\"" else {
                                throw RouteLineError("invalid escape sequence (only \\\\ and \\\" are allowed)")
                            }
                            self.advance()
                            out.append(escaped)
                        } else {
                            out.append(quoted)
                        }
                    }
                } else if next == "," || next == " " || next == "\t" || next == "#" || (stopAtEquals && next == "=") {
                    break
                } else {
                    out.append(next)
                    self.advance()
                }
            }
            return String(out)
        }
    }
}
