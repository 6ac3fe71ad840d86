import Foundation
import GRIP

#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for the publish API of a running `p8` (`push_in_http_addr:port`): one
/// request per connection over a plain socket, as the API closes every connection after its answer. Only
/// `http://` URLs; `p8ctl` talks to a local or trusted control port.
struct ControlClient {
    /// A response: status, headers (names lowercased) and body.
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]

        /// The body as text, without its final newline.
        var text: String {
            var text = String(decoding: self.body, as: UTF8.self)
            if text.hasSuffix("\n") {
                text.removeLast()
            }
            return text
        }

        /// Throws the server's answer as an error unless the status is 2xx: 77 for 401, else 76.
        func requireSuccess(from client: ControlClient) throws(CtlError) {
            guard (200..<300).contains(self.status) else {
                let status: CtlError.Status = self.status == 401 ? .unauthorized : .serverError
                let text = self.text.isEmpty ? "(no text)" : self.text
                throw CtlError(status, "\(client.url) answered \(self.status): \(text)")
            }
        }
    }

    /// The largest response read (a `/stats` answer with very many channels stays far below it).
    static let maxResponseBytes = 64 << 20

    /// The base URL as given (for messages).
    let url: String
    let host: String
    let port: Int
    /// A path prefix from the URL (no trailing `/`), put before every request path.
    let basePath: String
    /// Signs each request with a fresh JWT when set (`push_in_http_key`, `--key`).
    let key: SigningKey?
    /// Seconds to wait for the connection and for each read or write.
    let timeout: Int

    /// Parses `http://host[:port][/prefix]` (IPv6 hosts in brackets; port 80 when absent).
    init(url: String, key: SigningKey?, timeout: Int = 10) throws(CtlError) {
        guard url.lowercased().hasPrefix("http://") else {
            throw CtlError(.usage, "\(url): only http:// URLs are supported for the publish API")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        while path.hasSuffix("/") {
            path.removeLast()
        }
        let address: ListenAddress
        do {
            address = try ListenAddress(parsing: authority.contains(":") ? String(authority) : "\(authority):80")
        } catch {
            throw CtlError(.usage, "\(url): not a valid http://host:port URL")
        }
        self.url = url
        self.host = address.host
        self.port = address.port
        self.basePath = path
        self.key = key
        self.timeout = timeout
    }

    /// `GET path`.
    func get(_ path: String) throws(CtlError) -> Response {
        try self.send(method: "GET", path: path, body: nil)
    }

    /// `POST path` with a JSON body.
    func post(_ path: String, json body: [UInt8]) throws(CtlError) -> Response {
        try self.send(method: "POST", path: path, body: body)
    }

    private func send(method: String, path: String, body: [UInt8]?) throws(CtlError) -> Response {
        var head = "\(method) \(self.basePath)\(path) HTTP/1.1\r\n"
        head += "Host: \(ListenAddress(host: self.host, port: self.port))\r\n"
        head += "Accept: text/plain\r\nConnection: close\r\nUser-Agent: p8ctl\r\n"
        if let key = self.key {
            let token = GripSignature.token(
                issuer: "p8ctl",
                key: key,
                expiresAt: Int(Date().timeIntervalSince1970) + 3600
            )
            head += "Authorization: Bearer \(token)\r\n"
        }
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        let socket = try self.connect()
        defer { close(socket) }
        try self.write(Array(head.utf8) + (body ?? []), to: socket)
        return try self.readResponse(from: socket)
    }

    private func unreachable(_ reason: String) -> CtlError {
        CtlError(.unavailable, "cannot reach the p8 publish API at \(self.url): \(reason) (is p8 running?)")
    }

    private func connect() throws(CtlError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(self.host, String(self.port), &hints, &list)
        guard status == 0 else {
            throw self.unreachable(String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var next = list
        while let info = next {
            next = info.pointee.ai_next
            let socket = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard socket >= 0 else {
                reason = String(cString: strerror(errno))
                continue
            }
            var interval = timeval(tv_sec: self.timeout, tv_usec: 0)
            let size = socklen_t(MemoryLayout<timeval>.size)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &interval, size)
            setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &interval, size)
            if Glibc.connect(socket, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                return socket
            }
            reason = String(cString: strerror(errno)).lowercased()
            close(socket)
        }
        throw self.unreachable(reason)
    }

    private func write(_ bytes: [UInt8], to socket: Int32) throws(CtlError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { buffer in
                Glibc.send(socket, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else {
                // The server may answer early (413, 401) and close: read what it said.
                if errno == EPIPE || errno == ECONNRESET {
                    return
                }
                throw self.unreachable("sending the request failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Reads until the body is complete (`Content-Length`) or the server closes.
    private func readResponse(from socket: Int32) throws(CtlError) -> Response {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var parsed: (status: Int, headers: [String: String], bodyStart: Int)?
        while true {
            if parsed == nil {
                parsed = try self.parseHead(received)
            }
            if let parsed, let length = parsed.headers["content-length"].flatMap({ Int($0) }),
                received.count - parsed.bodyStart >= length
            {
                return Response(
                    status: parsed.status,
                    headers: parsed.headers,
                    body: Array(received[parsed.bodyStart..<(parsed.bodyStart + length)])
                )
            }
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 || (count < 0 && errno == ECONNRESET && parsed != nil) {
                break
            }
            guard count > 0 else {
                throw self.unreachable("no answer: \(String(cString: strerror(errno)).lowercased())")
            }
            received += chunk[0..<count]
            guard received.count <= Self.maxResponseBytes else {
                throw CtlError(.serverError, "\(self.url): the answer is larger than \(Self.maxResponseBytes) bytes")
            }
        }
        guard let parsed = try self.parseHead(received) else {
            throw self.unreachable("the connection closed without an HTTP answer")
        }
        return Response(status: parsed.status, headers: parsed.headers, body: Array(received[parsed.bodyStart...]))
    }

    /// The status and headers once the head is complete, else nil.
    private func parseHead(
        _ bytes: [UInt8]
    ) throws(CtlError) -> (status: Int, headers: [String: String], bodyStart: Int)? {
        let marker: [UInt8] = Array("\r\n\r\n".utf8)
        guard bytes.count >= marker.count,
            let end = (0...(bytes.count - marker.count)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(marker) })
        else {
            return nil
        }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw CtlError(.serverError, "\(self.url) did not answer HTTP (is it the publish port of p8?)")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        return (status, headers, end + marker.count)
    }
}
