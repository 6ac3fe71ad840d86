extension PublishItem {
    /// Parses an item object from JSON or tnetstring (grip-spec §4.1), with Pushpin's messages.
    ///
    /// - Parameters:
    ///   - channel: the channel from a ZeroMQ SUB topic frame; the item's own `channel` is then ignored.
    init(wire: WireValue, isJSON: Bool, channel: String?) throws(FieldError) {
        let reader = try ObjectReader(wire, name: "publish item object", isJSON: isJSON)
        if let channel {
            self.channel = channel
        } else {
            guard let name = try reader.string("channel", required: true), !name.isEmpty else {
                throw reader.invalidValue("channel")
            }
            self.channel = name
        }
        self.id = try reader.string("id")
        self.prevID = try reader.string("prev-id")
        let formats: [String: WireValue]
        if case .map(let members)? = try reader.object("formats") {
            formats = members
        } else {
            // Legacy form: the formats at the top level of the item (pubcontrol's default export).
            formats = reader.members.filter { PublishFormats.names.contains($0.key) }
        }
        guard !formats.isEmpty else {
            throw FieldError(message: "no formats specified")
        }
        self.formats = try PublishFormats(wire: formats, isJSON: isJSON)
        self.meta = try reader.stringMap("meta") ?? [:]
        self.size = try reader.int("size")
        self.noSeq = try reader.bool("no-seq") ?? false
    }
}
