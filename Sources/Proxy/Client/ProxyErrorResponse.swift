import NIOHTTP1

/// The responses the proxy itself produces, worded as Pushpin words them (grip-spec §2.7). Bodies are safe to
/// show a client: they never carry backend addresses, keys or internal details.
struct ProxyErrorResponse: Error, Equatable {
    var status: HTTPResponseStatus
    var body: String

    static func noRoute(host: String) -> Self {
        Self(status: .badGateway, body: "No route for host: \(host)\n")
    }

    static let originError = Self(status: .badGateway, body: "Error while proxying to origin.\n")
    static let originTimeout = Self(status: .gatewayTimeout, body: "Timed out waiting for origin.\n")
    static let malformedRequest = Self(status: .badRequest, body: "Malformed request.\n")
    static let headersTooLarge = Self(status: .requestHeaderFieldsTooLarge, body: "Request headers too large.\n")
    static let requestTooLargeForGrip = Self(
        status: .badRequest,
        body: "Request too large to accept GRIP instruct.\n"
    )
    /// A request the proxy refuses to forward, e.g. malformed JSON-P parameters.
    static func badRequest(_ message: String) -> Self {
        Self(status: .badRequest, body: message + "\n")
    }

    /// With `debug` on: the reason the backend's GRIP instructions were refused.
    static func invalidInstructions(_ reason: String) -> Self {
        Self(status: .badGateway, body: "Failed to parse accept instructions: \(reason)\n")
    }

    /// With `debug` on: why a content filter refused a published item or a hold's response.
    static func filterError(_ reason: String) -> Self {
        Self(status: .badGateway, body: "\(reason)\n")
    }

    /// The response head (`Connection: close` is added by whoever sends it, when the connection ends).
    func head(version: HTTPVersion) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain")
        headers.add(name: "Content-Length", value: String(self.body.utf8.count))
        return HTTPResponseHead(version: version, status: self.status, headers: headers)
    }
}
