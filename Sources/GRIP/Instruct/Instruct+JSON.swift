extension Instruct {
    /// Applies the JSON instruct form (`Content-Type: application/grip-instruct`, grip-spec §3.3) on top of
    /// instructions parsed from the headers: `hold` replaces the hold mode, channels, timeout, keep-alive and
    /// (when given) meta; `response` replaces the response, whose headers and body otherwise become empty
    /// (the JSON body itself is never sent).
    ///
    /// - Parameter body: the JSON body.
    /// - Throws: ``InstructError`` with Pushpin's message.
    package mutating func applyJSONInstruct(_ body: [UInt8]) throws(InstructError) {
        guard let json = JSONValue.parse(body) else {
            throw InstructError(.invalidJSON, "failed to parse application/grip-instruct content as JSON")
        }
        let instruct: ObjectReader
        do {
            instruct = try ObjectReader(WireValue(json), name: "instruct", isJSON: true)
        } catch {
            throw InstructError(.invalidInstruct, "instruct must be an object")
        }
        do throws(FieldError) {
            if let hold = try instruct.object("hold") {
                try self.applyHold(try ObjectReader(hold, name: "hold", isJSON: true))
            }
            self.response.headers = []
            self.response.body = []
            if let response = try instruct.object("response") {
                try self.applyResponse(try ObjectReader(response, name: "response", isJSON: true))
            }
        } catch {
            throw InstructError(.invalidInstruct, error.message)
        }
        if self.response.reason.isEmpty {
            self.response.reason = StatusReason.phrase(for: self.response.code)
        }
    }

    private mutating func applyHold(_ hold: ObjectReader) throws(FieldError) {
        switch try hold.string("mode") {
        case nil, "response": self.holdMode = .response
        case "stream": self.holdMode = .stream
        default: throw FieldError(message: "hold 'mode' must be set to either 'response' or 'stream'")
        }
        var channels: [Channel] = []
        for element in try hold.list("channels", required: true) ?? [] {
            let channel = try ObjectReader(element, name: "channel", isJSON: true)
            guard let name = try channel.string("name", required: true), !name.isEmpty else {
                throw channel.invalidValue("name")
            }
            channels.append(
                Channel(
                    name: name,
                    prevID: try channel.string("prev-id"),
                    filters: try channel.strings("filters", elementMessage: "filters contains value with wrong type")
                        ?? []
                )
            )
        }
        self.channels = channels
        if let timeout = try hold.int("timeout") {
            self.timeout = max(timeout, Self.minimumTimeout)
        }
        if let keepAlive = try hold.object("keep-alive") {
            let reader = try ObjectReader(keepAlive, name: "keep-alive", isJSON: true)
            var data: [UInt8] = []
            if let binary = try reader.binary("content-bin") {
                data = binary
            } else if let content = try reader.content("content") {
                data = content
            }
            let timeout = try reader.int("timeout") ?? Self.defaultKeepAliveTimeout
            // The JSON form has no mode: Pushpin then behaves like interval mode, unless a header gave one.
            let mode = self.keepAlive?.mode ?? .interval
            self.keepAlive =
                data.isEmpty
                ? nil : KeepAlive(data: data, timeout: max(timeout, Self.minimumKeepAliveTimeout), mode: mode)
        }
        if let meta = try hold.stringMap("meta") {
            self.meta = meta
        }
    }

    private mutating func applyResponse(_ response: ObjectReader) throws(FieldError) {
        if let code = try response.int("code", in: Self.statusCodes) {
            self.response.code = code
            self.response.reason = ""
        }
        if let reason = try response.string("reason"), !reason.isEmpty {
            guard HeaderField.isValidValue(reason) else {
                throw response.invalidValue("reason")
            }
            self.response.reason = reason
        }
        if let headers = try response.headers("headers") {
            for field in headers {
                guard HeaderField.isValidName(field.name), HeaderField.isValidValue(field.value) else {
                    throw FieldError(
                        message: "headers contains '\(HeaderField.printable(field.name))' with invalid characters"
                    )
                }
            }
            self.response.headers = Self.clientHeaders(headers, exposing: [])
        }
        if let body = try response.binary("body-bin") {
            self.response.body = body
        } else if let body = try response.content("body") {
            self.response.body = body
        }
    }
}
