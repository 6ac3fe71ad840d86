// Publish items, from the HTTP API's JSON and the ZeroMQ forms (JSON and tnetstring): what parses is safe to
// deliver and comes back unchanged from the store's encoding; what does not parse is a PublishError.

func fuzzPublishJSON(_ bytes: [UInt8]) {
    if let items = try? PublishRequest.parse(body: bytes) {
        items.forEach(checkPublished)
    }
    if let item = try? PublishItem.parse(json: bytes) {
        checkPublished(item)
    }
}

func fuzzPublishTNetString(_ bytes: [UInt8]) {
    if let item = try? PublishItem.parse(tnetstring: bytes) {
        checkPublished(item)
    }
    // The SUB form: a topic frame names the channel, the item's own is overridden.
    if let item = try? PublishItem.parse(zmqMessage: bytes, channel: "topic") {
        require(item.channel == "topic", "the topic frame does not name the channel")
        checkPublished(item)
    }
}

/// The properties every accepted item has.
func checkPublished(_ item: PublishItem) {
    require(!item.channel.isEmpty, "an item without a channel was accepted")
    let stored = item.formats.storedJSON()
    do {
        let restored = try PublishFormats(storedJSON: stored)
        require(restored == item.formats, "formats change through the store's encoding: \(text(stored))")
    } catch {
        fatalError("property does not hold: stored formats do not parse (\(error)): \(text(stored))")
    }
    if let response = item.formats.httpResponse {
        require((0...999).contains(response.effectiveCode), "status code \(response.effectiveCode)")
        require(HeaderField.isValidValue(response.effectiveReason), "reason with control characters")
        for field in response.headers {
            require(
                HeaderField.isValidName(field.name) && HeaderField.isValidValue(field.value),
                "a header that breaks HTTP was accepted: \(HeaderField.printable(field.name))"
            )
            require(!field.hasName("content-length"), "Content-Length was accepted")
        }
    }
    if let message = item.formats.wsMessage, let reason = message.closeReason {
        require(reason.utf8.count <= 123, "a close reason longer than a close frame holds")
    }
}
