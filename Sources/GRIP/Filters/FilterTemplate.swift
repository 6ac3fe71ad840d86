/// The `%` templates of Pushpin's content filters (grip-spec §3.7): `%X` and `%(argument)X` directives (a letter
/// `X`; in the argument `\` escapes the next byte), `%%` for a literal `%`. `build-id` renders `id_format` and
/// content with them, `var-subst` content. Error texts are Pushpin's.
enum FilterTemplate {
    /// Renders `template`, replacing each directive with what `directive` returns for its letter and argument.
    ///
    /// - Throws: ``ContentFilterError`` for a malformed template or when `directive` fails (its message gets the
    ///   directive's position appended).
    static func render(
        _ template: [UInt8],
        directive: (_ letter: UInt8, _ argument: [UInt8]?) throws(ContentFilterError) -> [UInt8]
    ) throws(ContentFilterError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(template.count)
        var index = 0
        while index < template.count {
            let byte = template[index]
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < template.count else {
                throw ContentFilterError("Expected directive after '%' at position \(index)")
            }
            index += 1
            var argument: [UInt8]?
            if template[index] == UInt8(ascii: "(") {
                let fieldStart = index
                guard index + 1 < template.count else {
                    throw ContentFilterError("Expected character after '(' at position \(index)")
                }
                index += 1
                var field: [UInt8] = []
                var terminated = false
                while index < template.count {
                    let fieldByte = template[index]
                    if fieldByte == UInt8(ascii: "\\") {
                        guard index + 1 < template.count else {
                            throw ContentFilterError("Expected character after '\\' at position \(index)")
                        }
                        index += 1
                        field.append(template[index])
                    } else if fieldByte == UInt8(ascii: ")") {
                        terminated = true
                        break
                    } else {
                        field.append(fieldByte)
                    }
                    index += 1
                }
                guard terminated else {
                    throw ContentFilterError("Unterminated field starting at position \(fieldStart)")
                }
                guard index + 1 < template.count else {
                    throw ContentFilterError("Expected directive after ')' at position \(index)")
                }
                index += 1
                argument = field
            } else if template[index] == UInt8(ascii: "%") {
                out.append(UInt8(ascii: "%"))
                index += 1
                continue
            } else if !Self.isLetter(template[index]) {
                let shown = String(decoding: [template[index]], as: UTF8.self)
                throw ContentFilterError("Unknown directive '\(shown)' at position \(index)")
            }
            do {
                out += try directive(template[index], argument)
            } catch {
                throw ContentFilterError("\(error.message) at position \(index)")
            }
            index += 1
        }
        return out
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    /// The `s` directive with a required argument naming a variable (`%(name)s`), as `id_format` and `var-subst`
    /// use it.
    static func variable(
        _ letter: UInt8,
        _ argument: [UInt8]?,
        in variables: [String: String]
    ) throws(ContentFilterError) -> [UInt8] {
        guard letter == UInt8(ascii: "s") else {
            throw ContentFilterError("Unknown directive '\(String(decoding: [letter], as: UTF8.self))'")
        }
        guard let argument else {
            throw ContentFilterError("Directive 's' requires argument")
        }
        let name = String(decoding: argument, as: UTF8.self)
        guard let value = variables[name] else {
            throw ContentFilterError("No such variable '\(name)'")
        }
        return Array(value.utf8)
    }
}
