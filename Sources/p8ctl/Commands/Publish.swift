import ArgumentParser
import Foundation

extension P8Ctl {
    /// `p8ctl publish`: one item through the running server's publish API, as `pushpin-publish` sends it.
    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "publish",
            abstract: "Publish an item to a channel through the running server's publish API.",
            discussion: """
                Sends one item to POST /publish/ of the running p8, as pushpin-publish does: the content goes \
                to every format chosen with --format (default all three); the http-response body and the \
                http-stream content get a trailing newline unless --no-eol. DATA "-" or no DATA reads the \
                content from stdin. --close ends HTTP streams and WebSockets instead of sending content. \
                The API answers only once the item is committed to the database.

                The URL comes from the config ([handler] push_in_http_addr and push_in_http_port), the JWT \
                key from [handler] push_in_http_key; --url and --key override them.

                Examples:
                  p8ctl publish news 'data: hello' --id n42 --prev-id n41
                  echo '{"price": 10}' | p8ctl publish prices --format http-response --no-eol
                  p8ctl publish news --close

                Exit status: 0 published; 64 bad arguments; 69 the server cannot be reached; 76 the server \
                refused the item (its answer is printed); 77 not authorised (push_in_http_key); 78 a bad \
                config file.
                """
        )

        /// A publish format `--format` can name.
        enum Format: String, ExpressibleByArgument, CaseIterable {
            case httpResponse = "http-response"
            case httpStream = "http-stream"
            case wsMessage = "ws-message"
        }

        @Argument(help: ArgumentHelp("The channel.", valueName: "channel"))
        var channel: String

        @Argument(help: ArgumentHelp("The content; - or nothing reads stdin.", valueName: "data"))
        var data: String?

        @Option(help: ArgumentHelp("The item's id (for resume and de-duplication).", valueName: "id"))
        var id: String?

        @Option(
            name: .customLong("prev-id"),
            help: ArgumentHelp("The id of the channel's previous item.", valueName: "id")
        )
        var prevID: String?

        @Option(
            name: .customLong("format"),
            help: ArgumentHelp("A format to publish (repeatable; default all three).", valueName: "format")
        )
        var formats: [Format] = []

        @Flag(help: "Close HTTP streams and WebSockets subscribed to the channel (no content).")
        var close = false

        @Flag(name: .customLong("no-eol"), help: "Do not add a newline to the http-response and http-stream content.")
        var noEOL = false

        @Option(
            name: .long,
            help: ArgumentHelp(
                "The config file (default: ./p-8.conf, else config/p-8.conf.example).",
                valueName: "file"
            ),
            completion: .file()
        )
        var config: String?

        @OptionGroup(title: "Server") var server: ServerOptions

        func validate() throws {
            guard !self.channel.isEmpty else {
                throw ValidationError("the channel must not be empty")
            }
            if self.close {
                guard self.data == nil else {
                    throw ValidationError("--close publishes no content: drop DATA")
                }
                guard self.formats.isEmpty || self.formats.contains(where: { $0 != .httpResponse }) else {
                    throw ValidationError("--close applies to http-stream and ws-message, not http-response")
                }
            }
        }

        func run() async throws {
            let client = try self.server.client(config: self.config)
            let item = try self.item()
            let body = JSONValue.object([("items", .array([item]))]).compact
            let response = try client.post("/publish/", json: Array(body.utf8))
            try response.requireSuccess(from: client)
            Output.line("published to \"\(self.channel)\"" + (self.id.map { " as \"\($0)\"" } ?? ""))
        }

        /// The item: channel, id, prev-id and the chosen formats.
        private func item() throws -> JSONValue {
            let chosen = self.formats.isEmpty ? Format.allCases : Self.unique(self.formats)
            var formats: [(String, JSONValue)] = []
            if self.close {
                for format in chosen where format != .httpResponse {
                    formats.append((format.rawValue, .object([("action", .string("close"))])))
                }
            } else {
                let content = try self.content()
                let eol: [UInt8] = self.noEOL ? [] : [0x0A]
                for format in chosen {
                    switch format {
                    case .httpResponse:
                        formats.append((format.rawValue, .object([Self.bytes("body", content + eol)])))
                    case .httpStream:
                        formats.append((format.rawValue, .object([Self.bytes("content", content + eol)])))
                    case .wsMessage:
                        formats.append((format.rawValue, .object([Self.bytes("content", content)])))
                    }
                }
            }
            var members: [(String, JSONValue)] = [("channel", .string(self.channel))]
            if let id = self.id {
                members.append(("id", .string(id)))
            }
            if let prevID = self.prevID {
                members.append(("prev-id", .string(prevID)))
            }
            members.append(("formats", .object(formats)))
            return .object(members)
        }

        private func content() throws -> [UInt8] {
            if let data = self.data, data != "-" {
                return Array(data.utf8)
            }
            return Array(FileHandle.standardInput.readDataToEndOfFile())
        }

        /// `key` with the text when it is UTF-8, else `key-bin` with base64 (a WebSocket message then is binary).
        private static func bytes(_ key: String, _ bytes: [UInt8]) -> (String, JSONValue) {
            if let text = String(validating: bytes, as: UTF8.self) {
                return (key, .string(text))
            }
            return (key + "-bin", .string(Data(bytes).base64EncodedString()))
        }

        private static func unique(_ formats: [Format]) -> [Format] {
            var seen: Set<Format> = []
            return formats.filter { seen.insert($0).inserted }
        }
    }
}
