import GRIP
import NIOHTTP1

/// Turns a client's request head into the head sent to a backend (grip-spec §2.5), in Pushpin's order:
/// route rewriting, hop-by-hop removal, untrusted `Grip-*` removal, `Grip-Sig`, `X-Forwarded-Proto`,
/// `X-Forwarded-For`, `Host`.
struct BackendRequestBuilder {
    /// The `Grip-Feature` value Pushpin 1.36 sends with every signed request.
    static let gripFeatures =
        "status, session, link:next, filter:skip-self, filter:skip-users, filter:require-sub, "
        + "filter:build-id, filter:var-subst"

    var proxy: ProxyConfiguration
    var signatures: GripSignatureCache

    /// Whether a client request comes from a trusted upstream GRIP proxy: only when `upstream_key` is set
    /// and the request's `Grip-Sig` verifies with it. An empty key never trusts anyone.
    func isTrusted(_ head: HTTPRequestHead, now: Int) -> Bool {
        guard let upstreamKey = self.proxy.upstreamKey, let token = head.headers.first(name: "grip-sig") else {
            return false
        }
        return GripSignature.verify(token, key: upstreamKey, now: now) != nil
    }

    /// The backend request head for `client`, routed by `route` to `target`.
    func backendHead(
        for client: HTTPRequestHead,
        originForm: String,
        route: Route,
        target: RouteTarget,
        clientAddress: String?,
        clientIsTLS: Bool,
        trusted: Bool,
        now: Int
    ) -> HTTPRequestHead {
        var headers = client.headers
        let clientHasChunkedBody = headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        let clientHasContentLength = headers.contains(name: "content-length")

        // 1. Route rewriting.
        if let asHost = route.asHost {
            headers.replaceOrAdd(name: "host", value: asHost)
        }
        for header in route.headers {
            if header.value.isEmpty {
                headers.remove(name: header.name)
            } else {
                headers.replaceOrAdd(name: header.name, value: header.value)
            }
        }

        // 2. Connection-level headers, and the ones this proxy handles itself.
        HopByHopHeaders.remove(from: &headers)
        headers.remove(name: "expect")
        headers.remove(name: "accept-encoding")
        if self.proxy.acceptPushpinRoute {
            headers.remove(name: "pushpin-route")
        }

        // 3-4. GRIP headers: only a trusted upstream may pass its own; everyone else gets ours.
        if !trusted {
            headers.removeGripHeaders()
            if !route.noGrip {
                let issuer: String
                let key: SigningKey?
                if let routeIssuer = route.sigIss, let routeKey = route.sigKey {
                    (issuer, key) = (routeIssuer, routeKey)
                } else {
                    (issuer, key) = (self.proxy.sigIss, self.proxy.sigKey)
                }
                if let key {
                    headers.add(name: "Grip-Sig", value: self.signatures.token(issuer: issuer, key: key, now: now))
                }
                headers.add(name: "Grip-Feature", value: Self.gripFeatures)
            }
        }

        // 5. X-Forwarded-Proto.
        if self.proxy.acceptXForwardedProtocol || self.proxy.setXForwardedProtocol != .off {
            headers.remove(name: "x-forwarded-proto")
            headers.remove(name: "x-forwarded-protocol")
        }
        if clientIsTLS {
            switch self.proxy.setXForwardedProtocol {
            case .off:
                break
            case .protoOnly:
                headers.add(name: "X-Forwarded-Proto", value: "https")
            case .protoAndProtocol:
                headers.add(name: "X-Forwarded-Proto", value: "https")
                headers.add(name: "X-Forwarded-Protocol", value: "https")
            }
        }

        // 6. X-Forwarded-For.
        let rule = trusted ? self.proxy.xForwardedForTrusted : self.proxy.xForwardedFor
        if rule.append || rule.truncate != nil {
            let existing = headers["x-forwarded-for"]
            headers.remove(name: "x-forwarded-for")
            if let value = rule.apply(existing: existing, clientAddress: clientAddress ?? "") {
                headers.add(name: "X-Forwarded-For", value: value)
            }
        }

        // 7. Host.
        if let hostOverride = target.hostHeader {
            headers.replaceOrAdd(name: "host", value: hostOverride)
        }

        // Framing: the body is re-framed hop by hop; say how.
        if clientHasChunkedBody {
            headers.remove(name: "content-length")
            headers.add(name: "Transfer-Encoding", value: "chunked")
        } else if !clientHasContentLength, [.POST, .PUT, .PATCH].contains(client.method) {
            headers.add(name: "Content-Length", value: "0")
        }

        return HTTPRequestHead(
            version: .http1_1,
            method: client.method,
            uri: Self.rewrittenURI(originForm, route: route),
            headers: headers
        )
    }

    /// Applies the route's `path_rem`/`replace_beg` to the path, keeping the query.
    static func rewrittenURI(_ uri: String, route: Route) -> String {
        guard let queryStart = uri.firstIndex(of: "?") else {
            return route.rewrittenPath(uri)
        }
        return route.rewrittenPath(String(uri[..<queryStart])) + uri[queryStart...]
    }
}
