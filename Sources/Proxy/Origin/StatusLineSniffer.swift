import NIOCore
import NIOHTTP1

/// Reads the reason phrase of each backend response off the wire, because NIO's decoder replaces it with
/// the standard one (`201 Created Here` would reach the client as `201 Created`). Sits in front of the
/// decoder; ``expectResponse()`` is called for every request sent, and the first status line read after it,
/// past any informational (1xx) responses, is kept in ``reasonPhrase``.
final class StatusLineSniffer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State {
        case idle
        /// Collecting a status line (bytes so far).
        case readingStatusLine([UInt8])
        /// Skipping an informational response's headers up to the blank line (the last bytes seen).
        case skippingInformationalHeaders([UInt8])
    }

    private var state = State.idle
    /// The status code and reason phrase of the response being received.
    private(set) var status: (code: Int, reason: String)?

    func expectResponse() {
        self.state = .readingStatusLine([])
        self.status = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        if case .idle = self.state {
            context.fireChannelRead(data)
            return
        }
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                guard self.consume(byte) else { break }
            }
        }
        context.fireChannelRead(data)
    }

    /// Returns false once nothing more needs to be read.
    private func consume(_ byte: UInt8) -> Bool {
        switch self.state {
        case .idle:
            return false
        case .readingStatusLine(var line):
            guard byte == UInt8(ascii: "\n") else {
                line.append(byte)
                // A status line this long is not one; let the decoder report the garbage.
                self.state = line.count > 1024 ? .idle : .readingStatusLine(line)
                return line.count <= 1024
            }
            let text = String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...], as: UTF8.self)
            let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, let code = Int(parts[1]) else {
                self.state = .idle
                return false
            }
            if (100..<200).contains(code) && code != 101 {
                self.state = .skippingInformationalHeaders([])
                return true
            }
            self.status = (code, parts.count > 2 ? String(parts[2]) : "")
            self.state = .idle
            return false
        case .skippingInformationalHeaders(var tail):
            tail.append(byte)
            if tail.count > 4 {
                tail.removeFirst()
            }
            if tail.suffix(4).elementsEqual("\r\n\r\n".utf8) || tail.suffix(2).elementsEqual("\n\n".utf8) {
                self.state = .readingStatusLine([])
            } else {
                self.state = .skippingInformationalHeaders(tail)
            }
            return true
        }
    }

    /// `status` with the reason phrase the backend sent, when it differs from the standard one.
    func restoringReasonPhrase(_ status: HTTPResponseStatus) -> HTTPResponseStatus {
        guard let sniffed = self.status, sniffed.code == Int(status.code), sniffed.reason != status.reasonPhrase else {
            return status
        }
        return .custom(code: status.code, reasonPhrase: sniffed.reason)
    }
}

@available(*, unavailable)
extension StatusLineSniffer: Sendable {}
