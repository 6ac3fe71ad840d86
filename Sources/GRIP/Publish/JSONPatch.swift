/// RFC 6902 JSON Patch, for `http-response` items with `body-patch` (grip-spec §3.4 step 5): the operations
/// are applied to the hold's original response body.
package enum JSONPatch {
    /// Applies `operations` to a response body: the body must be a JSON object or array; the result is written
    /// compactly (keys sorted, as Qt writes them), keeping a trailing `\n` or `\r\n` the original had.
    ///
    /// - Throws: ``JSONPatchError``; Pushpin then answers the hold with 502.
    package static func apply(_ operations: [JSONValue], toBody body: [UInt8]) throws(JSONPatchError) -> [UInt8] {
        guard let document = JSONValue.parse(body) else {
            throw JSONPatchError("the response body is not JSON")
        }
        switch document {
        case .object, .array: break
        default: throw JSONPatchError("the response body is not a JSON object or array")
        }
        var out = try Self.apply(operations, to: document).encoded()
        if body.suffix(2) == [0x0D, 0x0A] {
            out += [0x0D, 0x0A]
        } else if body.last == 0x0A {
            out.append(0x0A)
        }
        return out
    }

    /// Applies `operations` in order (all or nothing).
    ///
    /// - Throws: ``JSONPatchError`` naming the failing operation's index.
    package static func apply(_ operations: [JSONValue], to document: JSONValue) throws(JSONPatchError) -> JSONValue {
        var document = document
        for (index, operation) in operations.enumerated() {
            do {
                try Self.apply(operation, to: &document)
            } catch {
                throw JSONPatchError("operation \(index): \(error.message)")
            }
        }
        return document
    }

    private static func apply(_ operation: JSONValue, to document: inout JSONValue) throws(JSONPatchError) {
        guard case .object(let members) = operation else {
            throw JSONPatchError("not an object")
        }
        guard case .string(let op)? = members["op"] else {
            throw JSONPatchError("no 'op' string")
        }
        let path = try Self.pointer(members, "path")
        switch op {
        case "add":
            try Self.add(try Self.value(members), at: path, in: &document)
        case "remove":
            _ = try Self.remove(at: path, in: &document)
        case "replace":
            let value = try Self.value(members)
            if !path.isEmpty {
                _ = try Self.remove(at: path, in: &document)
            }
            try Self.add(value, at: path, in: &document)
        case "move":
            let from = try Self.pointer(members, "from")
            guard from != path else {
                return
            }
            guard !(path.count > from.count && Array(path.prefix(from.count)) == from) else {
                throw JSONPatchError("'from' is a prefix of 'path'")
            }
            let value = try Self.remove(at: from, in: &document)
            try Self.add(value, at: path, in: &document)
        case "copy":
            let from = try Self.pointer(members, "from")
            try Self.add(try Self.get(from, in: document), at: path, in: &document)
        case "test":
            guard Self.equal(try Self.get(path, in: document), try Self.value(members)) else {
                throw JSONPatchError("test failed")
            }
        default:
            throw JSONPatchError("unknown op '\(op)'")
        }
    }

    private static func value(_ members: [String: JSONValue]) throws(JSONPatchError) -> JSONValue {
        guard let value = members["value"] else {
            throw JSONPatchError("no 'value'")
        }
        return value
    }

    /// A JSON Pointer (RFC 6901) as reference tokens.
    private static func pointer(_ members: [String: JSONValue], _ key: String) throws(JSONPatchError) -> [String] {
        guard case .string(let text)? = members[key] else {
            throw JSONPatchError("no '\(key)' string")
        }
        guard !text.isEmpty else {
            return []
        }
        guard text.hasPrefix("/") else {
            throw JSONPatchError("'\(key)' is not a JSON pointer")
        }
        return text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            String($0).replacing("~1", with: "/").replacing("~0", with: "~")
        }
    }

    private static func index(_ token: String, count: Int, allowEnd: Bool) throws(JSONPatchError) -> Int {
        if allowEnd && token == "-" {
            return count
        }
        guard let index = Int(token), token.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            token == "0" || !token.hasPrefix("0"), index <= (allowEnd ? count : count - 1)
        else {
            throw JSONPatchError("bad array index '\(token)'")
        }
        return index
    }

    private static func get(_ path: [String], in document: JSONValue) throws(JSONPatchError) -> JSONValue {
        var current = document
        for token in path {
            switch current {
            case .object(let members):
                guard let next = members[token] else {
                    throw JSONPatchError("no member '\(token)'")
                }
                current = next
            case .array(let elements):
                current = elements[try Self.index(token, count: elements.count, allowEnd: false)]
            default:
                throw JSONPatchError("'\(token)' is not in a container")
            }
        }
        return current
    }

    private static func add(_ value: JSONValue, at path: [String], in document: inout JSONValue) throws(JSONPatchError)
    {
        guard let token = path.first else {
            document = value
            return
        }
        let rest = Array(path.dropFirst())
        switch document {
        case .object(var members):
            if rest.isEmpty {
                members[token] = value
            } else {
                guard var child = members[token] else {
                    throw JSONPatchError("no member '\(token)'")
                }
                try Self.add(value, at: rest, in: &child)
                members[token] = child
            }
            document = .object(members)
        case .array(var elements):
            if rest.isEmpty {
                elements.insert(value, at: try Self.index(token, count: elements.count, allowEnd: true))
            } else {
                let index = try Self.index(token, count: elements.count, allowEnd: false)
                try Self.add(value, at: rest, in: &elements[index])
            }
            document = .array(elements)
        default:
            throw JSONPatchError("'\(token)' is not in a container")
        }
    }

    private static func remove(at path: [String], in document: inout JSONValue) throws(JSONPatchError) -> JSONValue {
        guard let token = path.first else {
            throw JSONPatchError("cannot remove the whole document")
        }
        let rest = Array(path.dropFirst())
        switch document {
        case .object(var members):
            guard var child = members[token] else {
                throw JSONPatchError("no member '\(token)'")
            }
            let removed: JSONValue
            if rest.isEmpty {
                removed = child
                members[token] = nil
            } else {
                removed = try Self.remove(at: rest, in: &child)
                members[token] = child
            }
            document = .object(members)
            return removed
        case .array(var elements):
            let index = try Self.index(token, count: elements.count, allowEnd: false)
            let removed = rest.isEmpty ? elements.remove(at: index) : try Self.remove(at: rest, in: &elements[index])
            document = .array(elements)
            return removed
        default:
            throw JSONPatchError("'\(token)' is not in a container")
        }
    }

    /// JSON equality (numbers compared by value, so `1` equals `1.0`).
    private static func equal(_ lhs: JSONValue, _ rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)):
            return Double(a) == b
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { Self.equal($0, $1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count && a.allSatisfy { key, value in b[key].map { Self.equal(value, $0) } ?? false }
        default:
            return lhs == rhs
        }
    }
}

/// Why a JSON Patch could not be applied.
package struct JSONPatchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong (e.g. `operation 1: no member 'x'`).
    package var message: String

    /// Creates an error.
    package init(_ message: String) {
        self.message = message
    }

    /// `body-patch failed: <message>`.
    package var description: String {
        "body-patch failed: \(self.message)"
    }
}
