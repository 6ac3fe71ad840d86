import NIOCore
import NIOPosix

/// Published content as one `ByteBuffer` per event loop: every stream hold or WebSocket on a loop that gets
/// the same published bytes writes the same storage, instead of a copy each. A client that stops reading keeps
/// its unsent writes queued (up to its limit), so with a copy each, 2,000 such clients held over 1 MB each
/// after a few 100 KB items; shared, they hold references to one buffer per item.
enum SharedContent {
    /// A few recent contents and their buffers; used only on its own thread (an event loop).
    private final class Recent: @unchecked Sendable {
        var entries: [(content: ArraySlice<UInt8>, buffer: ByteBuffer)] = []
    }

    private static let recent = ThreadSpecificVariable<Recent>()
    private static let capacity = 8

    /// The buffer for `content`: the one made for the same array storage on this thread, or a new one.
    static func buffer(_ content: [UInt8]) -> ByteBuffer {
        Self.buffer(content[...])
    }

    /// The buffer for `content` (a whole array or a part of one, e.g. one frame of a long message).
    static func buffer(_ content: ArraySlice<UInt8>) -> ByteBuffer {
        let recent: Recent
        if let existing = Self.recent.currentValue {
            recent = existing
        } else {
            recent = Recent()
            Self.recent.currentValue = recent
        }
        // Kept entries hold their arrays alive, so equal storage addresses mean the very same bytes.
        if let entry = recent.entries.first(where: { Self.sameStorage($0.content, content) }) {
            return entry.buffer
        }
        let buffer = ByteBuffer(bytes: content)
        recent.entries.append((content, buffer))
        if recent.entries.count > Self.capacity {
            recent.entries.removeFirst()
        }
        return buffer
    }

    private static func sameStorage(_ lhs: ArraySlice<UInt8>, _ rhs: ArraySlice<UInt8>) -> Bool {
        lhs.withUnsafeBufferPointer { left in
            rhs.withUnsafeBufferPointer { right in
                left.baseAddress == right.baseAddress && left.count == right.count
            }
        }
    }
}
