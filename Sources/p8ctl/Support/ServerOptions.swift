import ArgumentParser
import GRIP
import Runner

/// Where the running server's publish API is, for the commands that talk to it (`publish`, `stats`,
/// `replay --publish`, the live column of `channels`).
struct ServerOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The publish API (default: http://[handler] push_in_http_addr:push_in_http_port of the config, else "
                + "http://127.0.0.1:5561).",
            valueName: "url"
        )
    )
    var url: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The key the server checks JWTs with (default: [handler] push_in_http_key); plain or base64:...",
            valueName: "key"
        )
    )
    var key: String?

    /// A client for the API: `--url` and `--key`, else the config file's `[handler]` values.
    ///
    /// - Parameters:
    ///   - config: `--config`; nil looks for the default config file as `p8` does (none found: the defaults).
    ///   - timeout: seconds for connecting and for each read.
    func client(config: String?, timeout: Int = 10) throws -> ControlClient {
        var handler: HandlerConfiguration?
        if let file = config ?? P8Configuration.findDefaultConfigFile() {
            do {
                handler = try P8Configuration.load(configFile: file).handler
            } catch {
                throw CtlError(.badConfig, "\(error)")
            }
        }
        var key = handler?.publishKey
        if let text = self.key {
            do {
                key = try SigningKey.parse(text)
            } catch {
                throw CtlError(.usage, "--key: \(error)")
            }
        }
        return try ControlClient(url: self.url ?? Self.url(of: handler), key: key, timeout: timeout)
    }

    /// `http://addr:port` of the config's control API; a wildcard bind address is reached on loopback.
    private static func url(of handler: HandlerConfiguration?) -> String {
        guard let handler else {
            return "http://127.0.0.1:5561"
        }
        let host: String
        switch handler.pushInHTTPAddr {
        case "0.0.0.0", "":
            host = "127.0.0.1"
        case "::", "[::]":
            host = "::1"
        default:
            host = handler.pushInHTTPAddr
        }
        return "http://\(ListenAddress(host: host, port: handler.pushInHTTPPort))"
    }
}
