import Foundation
import GRIP
import NIOHTTP1

/// Where a `Grip-Link` points, resolved: requested through the client's route when it names the same host as the
/// request it was resolved against, else straight to the host it names.
struct LinkTarget {
    /// The absolute URI, the base a later link in the response is resolved against.
    var uri: URL
    /// The path and query sent to the backend.
    var originForm: String
    /// The `Host` header of the request.
    var host: String
    /// Set when the link names another host: connect there instead of the route's targets.
    var directTarget: RouteTarget?

    /// `uri`, requested through the route (`throughRoute`) or straight from its host.
    ///
    /// - Returns: nil when `uri` is not an absolute `http` or `https` URI.
    init?(uri: URL, throughRoute: Bool) {
        guard let scheme = uri.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = uri.host,
            let components = URLComponents(url: uri, resolvingAgainstBaseURL: false)
        else {
            return nil
        }
        var originForm = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery {
            originForm += "?" + query
        }
        let port = uri.port ?? (scheme == "https" ? 443 : 80)
        self.uri = uri
        self.originForm = originForm
        self.host = uri.port.map { "\(host):\($0)" } ?? host
        self.directTarget =
            throughRoute ? nil : RouteTarget(kind: .host(host: host, port: port), ssl: scheme == "https")
    }

    /// Resolves the link `reference` against `base` (the URI of the request or response that carried it).
    ///
    /// - Returns: nil when the link is not an `http` or `https` URI after resolution.
    static func resolve(_ reference: String, against base: URL) -> LinkTarget? {
        guard let resolved = URL(string: reference, relativeTo: base)?.absoluteURL,
            let scheme = resolved.scheme?.lowercased(), let host = resolved.host
        else {
            return nil
        }
        let defaultPort = scheme == "https" ? 443 : 80
        let sameAuthority =
            base.host?.lowercased() == host.lowercased() && (base.port ?? defaultPort) == (resolved.port ?? defaultPort)
            && base.scheme?.lowercased() == scheme
        return LinkTarget(uri: resolved, throughRoute: sameAuthority)
    }

    /// The base URI of a client request: its absolute form, or `http://` with its `Host` and origin form.
    static func baseURI(of head: HTTPRequestHead, originForm: String) -> URL? {
        if let absolute = URL(string: head.uri), absolute.scheme != nil {
            return absolute
        }
        let host = head.headers.first(name: "host") ?? "localhost"
        return URL(string: "http://\(host)\(originForm)")
    }

    /// The request head the link is requested with: `Host` and `Accept: */*`, and for a `POST`, an empty body; the
    /// request builder adds the signature and forwarding headers. Client headers (cookies, credentials) are not
    /// sent.
    func requestHead(method: HTTPMethod) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.host)
        headers.add(name: "Accept", value: "*/*")
        if method == .POST {
            headers.add(name: "Content-Length", value: "0")
        }
        return HTTPRequestHead(version: .http1_1, method: method, uri: self.originForm, headers: headers)
    }
}

/// A resolved `Grip-Link: <...>; rel=next` (grip-spec §3.6): fetched with `GET`.
struct NextLink {
    var target: LinkTarget
    /// Seconds after which a stream hold fetches the link on its own.
    var timeout: Int

    var uri: URL { self.target.uri }

    /// Resolves `link` against `base` (the URI of the response that carried it).
    ///
    /// - Returns: nil when the link is not an `http` or `https` URI after resolution.
    static func resolve(_ link: Instruct.Link, against base: URL) -> NextLink? {
        LinkTarget.resolve(link.uri, against: base).map { NextLink(target: $0, timeout: link.timeout) }
    }
}
