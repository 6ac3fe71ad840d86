import Store

/// An error `p8ctl` reports as one line on stderr, with the exit status that says what went wrong.
struct CtlError: Error, CustomStringConvertible {
    /// The exit statuses of `p8ctl` (those from 64 on follow sysexits.h).
    enum Status: Int32 {
        /// Anything else: an SQLite, PostgreSQL or file-system error.
        case failure = 1
        /// The channel has never been published to in this database.
        case unknownChannel = 2
        /// The cursor's item has been trimmed: reading after it would skip items.
        case cursorTooOld = 3
        /// The cursor is not an item of the channel in this database.
        case unknownCursor = 4
        /// Bad arguments (the argument parser's status too).
        case usage = 64
        /// The file is not a usable P-8 database: another application's, damaged, newer or not yet migrated.
        case badDatabase = 65
        /// There is no database file.
        case noDatabase = 66
        /// The server's publish API cannot be reached (p8 not running, wrong address).
        case unavailable = 69
        /// The PostgreSQL server cannot be reached (down, wrong address) or refuses the login.
        case databaseUnavailable = 75
        /// The output file exists (backup without --force) or cannot be created.
        case cannotCreate = 73
        /// The server answered with an error (its text is the message).
        case serverError = 76
        /// The server refused the credentials (no or a wrong `push_in_http_key` / `--key`).
        case unauthorized = 77
        /// The config file cannot be read or is invalid.
        case badConfig = 78
    }

    var status: Status
    var message: String

    init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }

    var description: String { self.message }

    /// The error as `p8ctl` reports it: store errors get their own statuses, anything else is a failure.
    static func reporting(_ error: any Error) -> CtlError {
        switch error {
        case let error as CtlError:
            return error
        case let error as StoreError:
            switch error.code {
            case .notFound:
                return CtlError(
                    .noDatabase,
                    "\(error.path): no such database file (p8 creates it when it first starts)"
                )
            case .notAP8Database, .newerDatabase, .outdatedDatabase, .corruptDatabase:
                return CtlError(.badDatabase, "\(error.path): \(error.message)")
            case .unreachable:
                return CtlError(.databaseUnavailable, "\(error.path): cannot reach the database: \(error.message)")
            case .badURL:
                return CtlError(.usage, error.description)
            default:
                return CtlError(.failure, error.description)
            }
        default:
            return CtlError(.failure, "\(error)".split(whereSeparator: \.isNewline).joined(separator: " "))
        }
    }
}
