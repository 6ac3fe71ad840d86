// GRIP instructions from backend responses: the header form (`Grip-*` headers) and the
// `application/grip-instruct` JSON form. An accepted instruction can be carried out; a refused one is an
// InstructError (the proxy answers 502), never a trap.

/// The input: header lines `Name: value` up to an empty line (lines the proxy's HTTP parser would refuse are
/// left out), then the body.
func fuzzInstructHeaders(_ bytes: [UInt8]) {
    let (headers, body) = headersAndBody(bytes)
    if let instruct = try? Instruct.parse(status: 200, reason: "", headers: headers, body: body) {
        checkInstruct(instruct)
    }
}

/// The input is the JSON body; the headers are those of a plain instruct response.
func fuzzInstructJSON(_ bytes: [UInt8]) {
    let headers = [("Content-Type", "application/grip-instruct")]
    if let instruct = try? Instruct.parse(status: 200, reason: "", headers: headers, body: bytes) {
        checkInstruct(instruct)
        require(instruct.response.body.count <= bytes.count, "a response body longer than the instruct body")
    }
}

func headersAndBody(_ bytes: [UInt8]) -> (headers: [(String, String)], body: [UInt8]) {
    var headers: [(String, String)] = []
    var rest = bytes[...]
    while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
        let line = rest[rest.startIndex..<newline]
        rest = rest[(newline + 1)...]
        guard !line.isEmpty else {
            break
        }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let value = line[colon...].dropFirst().drop { $0 == UInt8(ascii: " ") }
        let field = HeaderField(name: text(Array(line[line.startIndex..<colon])), value: text(Array(value)))
        // What the proxy's HTTP parser lets through: a token name, a value without control characters.
        if HeaderField.isValidName(field.name), HeaderField.isValidValue(field.value) {
            headers.append((field.name, field.value))
        }
    }
    return (headers, Array(rest))
}

func checkInstruct(_ instruct: Instruct) {
    if instruct.holdMode != .none {
        for channel in instruct.channels {
            require(!channel.name.isEmpty, "a hold on a channel without a name")
        }
    }
    if instruct.holdMode == .response {
        require(instruct.timeout >= Instruct.minimumTimeout, "a response hold timeout of \(instruct.timeout) s")
    }
    if let keepAlive = instruct.keepAlive {
        require(keepAlive.timeout >= Instruct.minimumKeepAliveTimeout, "keep-alive every \(keepAlive.timeout) s")
        require(!keepAlive.data.isEmpty, "an empty keep-alive")
    }
    if let link = instruct.nextLink {
        require(link.timeout >= 0, "a next link timeout of \(link.timeout) s")
        require(Instruct.isValidURIReference(link.uri), "a next link that is no URI reference: \(link.uri)")
    }
    let response = instruct.response
    require((0...999).contains(response.code), "status code \(response.code)")
    require(HeaderField.isValidValue(response.reason), "a reason with control characters")
    for field in response.headers {
        require(!field.isGrip, "a Grip-* header left in the client response: \(field.name)")
    }
}
