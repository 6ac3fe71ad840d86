/// Auto cross-origin (`aco`, `[proxy] auto_cross_origin`, grip-spec §2.9): the CORS headers Pushpin adds to
/// every response of such a route, whether relayed from the backend, held, streamed or made by the proxy.
/// Headers the response already has are left as they are.
package enum CrossOrigin {
    /// The methods allowed when the request does not ask for one (`Access-Control-Request-Method`).
    static let defaultMethods = "OPTIONS, HEAD, GET, POST, PUT, DELETE"
    /// Response headers a browser exposes anyway, so they are never listed in `Access-Control-Expose-Headers`.
    static let simpleResponseHeaders: Set<String> = [
        "cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma",
    ]

    /// Adds the CORS headers to `response` for a request with `requestHeaders`.
    package static func apply(requestHeaders: [HeaderField], to response: inout [HeaderField]) {
        func has(_ name: String) -> Bool {
            response.contains { $0.hasName(name) }
        }
        func requestValues(_ name: String) -> [String] {
            requestHeaders.filter { $0.hasName(name) }.map(\.value)
        }
        var added: [HeaderField] = []
        if !has("Access-Control-Allow-Methods") {
            let method = requestValues("Access-Control-Request-Method").first ?? ""
            added.append(
                HeaderField(name: "Access-Control-Allow-Methods", value: method.isEmpty ? Self.defaultMethods : method)
            )
        }
        if !has("Access-Control-Allow-Headers") {
            let asked = requestValues("Access-Control-Request-Headers").filter { !$0.isEmpty }
            if !asked.isEmpty {
                added.append(HeaderField(name: "Access-Control-Allow-Headers", value: asked.joined(separator: ", ")))
            }
        }
        if !has("Access-Control-Expose-Headers") {
            var names: [String] = []
            for field in response where Self.isExposable(field) {
                if !names.contains(where: { field.hasName($0) }) {
                    names.append(field.name)
                }
            }
            if !names.isEmpty {
                added.append(HeaderField(name: "Access-Control-Expose-Headers", value: names.joined(separator: ", ")))
            }
        }
        if !has("Access-Control-Allow-Credentials") {
            added.append(HeaderField(name: "Access-Control-Allow-Credentials", value: "true"))
        }
        if !has("Access-Control-Allow-Origin") {
            let origin = requestValues("Origin").first ?? ""
            added.append(HeaderField(name: "Access-Control-Allow-Origin", value: origin.isEmpty ? "*" : origin))
        }
        if !has("Access-Control-Max-Age") {
            added.append(HeaderField(name: "Access-Control-Max-Age", value: "3600"))
        }
        response += added
    }

    private static func isExposable(_ field: HeaderField) -> Bool {
        let lowered = field.name.lowercased()
        return !Self.simpleResponseHeaders.contains(lowered) && !lowered.hasPrefix("access-control-")
            && !field.isGrip && !HeaderField.hopByHopNames.contains(lowered)
    }
}
