import Foundation
import GRIP
import NIOHTTP1

/// A resolved `Grip-Link: <...>; rel=next` (grip-spec §3.6): fetched with `GET` and only the headers the proxy
/// adds, through the client's route when it points at the same host, else straight to the host it names.
struct NextLink {
    /// The absolute URI, the base a later link in the response is resolved against.
    var uri: URL
    /// The path and query sent to the backend.
    var originForm: String
    /// The `Host` header of the request.
    var host: String
    /// Set when the link names another host: connect there instead of the route's targets.
    var directTarget: RouteTarget?
    /// Seconds after which a stream hold fetches the link on its own.
    var timeout: Int

    /// Resolves `link` against `base` (the URI of the response that carried it).
    ///
    /// - Returns: nil when the link is not an `http` or `https` URI after resolution.
    static func resolve(_ link: Instruct.Link, against base: URL) -> NextLink? {
        guard let resolved = URL(string: link.uri, relativeTo: base)?.absoluteURL,
            let scheme = resolved.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = resolved.host, let components = URLComponents(url: resolved, resolvingAgainstBaseURL: false)
        else {
            return nil
        }
        var originForm = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery {
            originForm += "?" + query
        }
        let defaultPort = scheme == "https" ? 443 : 80
        let hostHeader = resolved.port.map { "\(host):\($0)" } ?? host
        let sameAuthority =
            base.host?.lowercased() == host.lowercased() && (base.port ?? defaultPort) == (resolved.port ?? defaultPort)
            && base.scheme?.lowercased() == scheme
        return NextLink(
            uri: resolved,
            originForm: originForm,
            host: hostHeader,
            directTarget: sameAuthority
                ? nil
                : RouteTarget(kind: .host(host: host, port: resolved.port ?? defaultPort), ssl: scheme == "https"),
            timeout: link.timeout
        )
    }

    /// The base URI of a client request: its absolute form, or `http://` with its `Host` and origin form.
    static func baseURI(of head: HTTPRequestHead, originForm: String) -> URL? {
        if let absolute = URL(string: head.uri), absolute.scheme != nil {
            return absolute
        }
        let host = head.headers.first(name: "host") ?? "localhost"
        return URL(string: "http://\(host)\(originForm)")
    }

    /// The request head a link is fetched with: `GET`, `Host` and `Accept: */*`; the request builder adds the
    /// signature and forwarding headers, the caller `Grip-Last`. Client headers (cookies, credentials) are not
    /// sent.
    var requestHead: HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.host)
        headers.add(name: "Accept", value: "*/*")
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: self.originForm, headers: headers)
    }
}
