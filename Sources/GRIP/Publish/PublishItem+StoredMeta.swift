extension PublishItem {
    /// Item meta as JSON for the store: a compact object of strings, keys sorted; `nil` when there is none.
    package static func storedMetaJSON(_ meta: [String: String]) -> [UInt8]? {
        guard !meta.isEmpty else { return nil }
        return JSONValue.object(meta.mapValues(JSONValue.string)).encoded()
    }

    /// Reads meta written by ``storedMetaJSON(_:)``; `nil` when the bytes are not a JSON object of strings.
    package static func meta(storedJSON: [UInt8]) -> [String: String]? {
        guard case .object(let members)? = JSONValue.parse(storedJSON) else { return nil }
        var meta: [String: String] = [:]
        for (name, value) in members {
            guard case .string(let text) = value else { return nil }
            meta[name] = text
        }
        return meta
    }
}
