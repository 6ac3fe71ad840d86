import Foundation
import P8TestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `p8` executable as an operator runs it: readiness line, signals, exit status.
@Suite("The p8 process", .timeLimit(.minutes(1)))
struct P8ProcessTests {
    @Test("prints one readiness line with the bound port, and exits 0 on SIGTERM")
    func readinessAndSigterm() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--port", "127.0.0.1:0", "--route", "* 127.0.0.1:\(backend.port)"])
            let port = try await p8.readyPort()
            let client = try await RawHTTPConnection.connect(port: port)
            try await client.send("GET /plain?body=up HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try await client.readResponse().text == "up")
            await client.close()
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test(
        "near its descriptor limit, p8 closes new connections, and a request waits for a backend connection"
    )
    func descriptorLimit() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(
                arguments: ["--port", "127.0.0.1:0", "--route", "* 127.0.0.1:\(backend.port)"],
                descriptorLimit: 256
            )
            let port = try await p8.readyPort()
            // More connections than the limit itself: at it, the process would crash (libdispatch's monitor).
            var connections: [RawHTTPConnection] = []
            for _ in 0..<260 {
                connections.append(try await RawHTTPConnection.connect(port: port))
            }
            try await connections[259].waitForClose()
            #expect(p8.stderrText.contains("near the descriptor limit: client connections refused"))
            // An early connection was accepted, but no descriptor is left for its backend connection: the request
            // waits for one, and gets it once other clients leave.
            try await connections[0].send("GET /plain?body=up HTTP/1.1\r\nHost: a\r\n\r\n")
            for connection in connections[100...] {
                await connection.close()
            }
            #expect(try await connections[0].readResponse().text == "up")
            for connection in connections[..<100] {
                await connection.close()
            }
            // The budget comes back as p8 sees them close.
            var answered = false
            let deadline = ContinuousClock.now + defaultWait
            while !answered, ContinuousClock.now < deadline {
                let client = try await RawHTTPConnection.connect(port: port)
                try? await client.send("GET /plain?body=up HTTP/1.1\r\nHost: a\r\n\r\n")
                answered = (try? await client.readResponse().text) == "up"
                await client.close()
                if !answered {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            #expect(answered)
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("SIGTERM does not wait for a publish API connection that sends nothing")
    func sigtermClosesIdlePublishConnections() async throws {
        let p8 = try P8Process.start(arguments: ["--route", "* 127.0.0.1:1"])
        let ports = try await p8.readyPorts()
        let idle = try await RawHTTPConnection.connect(port: ports.publish)
        let started = ContinuousClock.now
        p8.signal(SIGTERM)
        try await idle.waitForClose()
        // Closed before the 5 s given to requests in progress had passed.
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await p8.waitForExit() == 0)
    }

    @Test("SIGTERM with a stream open ends the stream with its final chunk and exits 0")
    func sigtermEndsOpenStreams() async throws {
        try await withTestBackend { backend in
            let p8 = try P8Process.start(arguments: ["--port", "127.0.0.1:0", "--route", "* 127.0.0.1:\(backend.port)"])
            let port = try await p8.readyPort()
            let client = try await RawHTTPConnection.connect(port: port)
            try await client.send("GET /gated HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try await client.readHead()
            _ = try await client.readBytes(Array("8\r\nchunk-0;\r\n".utf8).count)
            p8.signal(SIGTERM)
            // The backend never finishes: after the grace period the client gets a well-framed end.
            #expect(try await client.readBytes(5, timeout: .seconds(15)) == Array("0\r\n\r\n".utf8))
            try await client.waitForClose()
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("SIGHUP reloads the routes file")
    func sighupReloadsRoutes() async throws {
        try await withTestBackend { backend in
            let temporary = try TemporaryDirectory(prefix: "p8")
            let directory = temporary.url
            let routes = directory.appendingPathComponent("routes")
            try "old.example 127.0.0.1:\(backend.port)\n".write(to: routes, atomically: true, encoding: .utf8)
            let config = directory.appendingPathComponent("p-8.conf")
            let text =
                "[global]\nrundir=run\n[runner]\nhttp_port=127.0.0.1:0\n[proxy]\nroutesfile=routes\n"
                + "[handler]\npush_in_http_port=0\npush_in_spec=\npush_in_sub_specs=\ncommand_spec=\n"
            try text.write(to: config, atomically: true, encoding: .utf8)
            let p8 = try P8Process.start(arguments: ["--config", config.path])
            let port = try await p8.readyPort()

            let before = try await RawHTTPConnection.connect(port: port)
            try await before.send("GET /plain HTTP/1.1\r\nHost: new.example\r\n\r\n")
            #expect(try await before.readResponse().status == 502)
            await before.close()

            try "new.example 127.0.0.1:\(backend.port)\n".write(to: routes, atomically: true, encoding: .utf8)
            p8.signal(SIGHUP)
            let reloaded = try await eventually {
                p8.stderrText.contains("routes reloaded")
            }
            #expect(reloaded)
            let after = try await RawHTTPConnection.connect(port: port)
            try await after.send("GET /plain?body=new HTTP/1.1\r\nHost: new.example\r\n\r\n")
            #expect(try await after.readResponse().text == "new")
            await after.close()
            p8.signal(SIGTERM)
            #expect(try await p8.waitForExit() == 0)
        }
    }

    @Test("a missing config file is a one-line error and a non-zero exit")
    func missingConfig() async throws {
        let p8 = try P8Process.start(arguments: ["--config", "/nonexistent/p-8.conf"])
        #expect(try await p8.waitForExit() != 0)
        #expect(p8.stderrText.contains("cannot read the config file"))
    }
}

/// A `p8` child process built beside the test bundle, with its stdout and stderr captured.
final class P8Process: Sendable {
    private let process: ChildProcess
    /// What was read from stderr so far (reading consumes it).
    private let stderrSeen = Mutex<[UInt8]>([])

    /// The temporary directory made for this process, removed with it.
    private let scratch: TemporaryDirectory?

    /// The config file made for this process (nil when the caller passed its own `--config`).
    var configPath: String? {
        self.scratch?.url.appendingPathComponent("p-8.conf").path
    }

    private init(process: ChildProcess, scratch: TemporaryDirectory?) {
        self.process = process
        self.scratch = scratch
    }

    deinit {
        if self.process.isRunning {
            self.process.signal(SIGKILL)
        }
    }

    /// Starts `p8`; without a `--config` argument it gets one of its own in a fresh temporary directory (its
    /// database included), so tests running side by side never share a database.
    ///
    /// With `descriptorLimit`, p8 runs under that `RLIMIT_NOFILE` (soft and hard, set by a shell that then
    /// becomes p8).
    static func start(arguments: [String], descriptorLimit: Int? = nil) throws -> P8Process {
        var arguments = arguments
        var scratch: TemporaryDirectory?
        if !arguments.contains("--config") {
            let directory = try TemporaryDirectory(prefix: "p8")
            let config = directory.url.appendingPathComponent("p-8.conf")
            try
                "[global]\nrundir=run\n[runner]\nhttp_port=127.0.0.1:0\n[handler]\npush_in_http_port=0\npush_in_spec=\npush_in_sub_specs=\ncommand_spec=\n"
                .write(
                    to: config,
                    atomically: true,
                    encoding: .utf8
                )
            arguments += ["--config", config.path]
            scratch = directory
        }
        guard let executable = ChildProcess.product("p8") else {
            throw P8ProcessError(description: "p8 not built beside the tests")
        }
        if let descriptorLimit {
            let shell = ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", executable.path] + arguments
            let process = try ChildProcess.spawn(URL(fileURLWithPath: "/bin/sh"), arguments: shell)
            return P8Process(process: process, scratch: scratch)
        }
        return P8Process(process: try ChildProcess.spawn(executable, arguments: arguments), scratch: scratch)
    }

    /// Reads the readiness line and returns the first HTTP port it names.
    func readyPort() async throws -> Int {
        try await self.readyPorts().http
    }

    /// Reads the readiness line (`p8 ready http=addr:port[,...] publish=addr:port`) and returns the first HTTP
    /// port and the publish API's port.
    func readyPorts() async throws -> (http: Int, publish: Int, https: Int?) {
        let handle = self.process.stdout
        let line = try await Task.detached {
            var bytes: [UInt8] = []
            while let chunk = try handle.read(upToCount: 1), let byte = chunk.first, byte != UInt8(ascii: "\n") {
                bytes.append(byte)
            }
            return String(decoding: bytes, as: UTF8.self)
        }.value
        func port(_ name: String) -> Int? {
            let value = line.split(separator: " ").first { $0.hasPrefix("\(name)=") }
            return value?.split(separator: ",").first?.split(separator: ":").last.flatMap { Int($0) }
        }
        guard line.hasPrefix("p8 ready http="), let http = port("http"), let publish = port("publish") else {
            throw P8ProcessError(description: "unexpected readiness line \"\(line)\"; stderr: \(self.stderrText)")
        }
        return (http, publish, port("https"))
    }

    func signal(_ signal: Int32) {
        self.process.signal(signal)
    }

    /// The runner's pid.
    var pid: pid_t {
        self.process.pid
    }

    /// The temporary directory made for this process (nil when the test passed its own `--config`).
    var directory: URL? {
        self.scratch?.url
    }

    /// Everything p8 wrote on stderr so far (its log).
    var stderrText: String {
        let descriptor = self.process.stderr.fileDescriptor
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        return self.stderrSeen.withLock { seen in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = Glibc.read(descriptor, &buffer, buffer.count)
                guard count > 0 else { break }
                seen += buffer[0..<count]
            }
            return String(decoding: seen, as: UTF8.self)
        }
    }

    func waitForExit() async throws -> Int32 {
        try await self.process.waitForExit()
    }
}

struct P8ProcessError: Error, CustomStringConvertible {
    var description: String
}
