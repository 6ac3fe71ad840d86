/// Why a backend's GRIP instructions cannot be followed. The proxy answers `502` (with ``description`` in the
/// body on `debug` routes: `Failed to parse accept instructions: <description>`).
///
/// Messages are Pushpin's where grip-spec §3 quotes them (e.g. `Grip-Hold must be set to either 'response' or
/// 'stream'`).
package struct InstructError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is.
    package enum Code: String, Sendable, Hashable {
        /// `Grip-Hold` (or JSON `hold.mode`) is neither `response` nor `stream`.
        case invalidHoldMode
        /// A `Grip-Channel` (or JSON channel) is empty or malformed.
        case invalidChannel
        /// `Grip-Timeout` (or JSON `hold.timeout`) is not a non-negative integer.
        case invalidTimeout
        /// `Grip-Keep-Alive` (or JSON `hold.keep-alive`) is empty or malformed.
        case invalidKeepAlive
        /// `Grip-Link` is malformed.
        case invalidLink
        /// `Grip-Status` (or JSON `response.code`) is not a status code.
        case invalidStatus
        /// `Grip-Set-Meta` (or JSON `hold.meta`) is empty or malformed.
        case invalidMeta
        /// A response header or reason phrase that cannot be sent (CR, LF, NUL, bad name characters).
        case invalidHeader
        /// `application/grip-instruct` content with a status other than 200.
        case instructStatusNot200
        /// `application/grip-instruct` content that is not JSON.
        case invalidJSON
        /// `application/grip-instruct` JSON of the wrong shape.
        case invalidInstruct
    }

    /// What kind of problem this is.
    package var code: Code
    /// What is wrong, in Pushpin's words where it has some.
    package var message: String

    /// Creates an error.
    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    package var description: String {
        self.message
    }
}
