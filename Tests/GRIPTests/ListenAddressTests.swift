import GRIP
import Testing

@Suite struct ListenAddressTests {
    @Test(
        arguments: [
            ("127.0.0.1:7999", "127.0.0.1", 7999),
            ("7999", "0.0.0.0", 7999),
            ("0", "0.0.0.0", 0),
            (" localhost:80 ", "localhost", 80),
            ("[::1]:8080", "::1", 8080),
            ("0.0.0.0:65535", "0.0.0.0", 65535),
        ]
    )
    func parses(text: String, host: String, port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address == ListenAddress(host: host, port: port))
    }

    @Test(arguments: ["", "abc", "127.0.0.1:", ":80", "127.0.0.1:65536", "1.2.3.4:-1", "::1:80", "[::1]", "[::1]80"])
    func rejects(text: String) {
        #expect(throws: ConfigError.self) {
            try ListenAddress(parsing: text)
        }
    }

    @Test func description() {
        #expect(ListenAddress(host: "127.0.0.1", port: 1).description == "127.0.0.1:1")
        #expect(ListenAddress(host: "::1", port: 2).description == "[::1]:2")
    }
}
