/// An error from the store, with a stable code and a message for operators.
package struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    package struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case notAP8Database
            case notFound
            case newerDatabase
            case outdatedDatabase
            case corruptDatabase
            case readOnly
            case missingMigrations
            case badURL
            case unreachable
            case statementFailed
        }

        private let base: Base

        /// The file is an SQLite database of another application.
        package static let notAP8Database = Code(base: .notAP8Database)
        /// A read-only open found no database file.
        package static let notFound = Code(base: .notFound)
        /// The database was written by a newer P-8 (it has migrations this build does not know).
        package static let newerDatabase = Code(base: .newerDatabase)
        /// A read-only open found a database that still needs migrations (the server migrates at start-up).
        package static let outdatedDatabase = Code(base: .outdatedDatabase)
        /// The file is not an SQLite database, or it is damaged.
        package static let corruptDatabase = Code(base: .corruptDatabase)
        /// A write was attempted on a store opened read-only.
        package static let readOnly = Code(base: .readOnly)
        /// The migration files are missing from the bundle (a packaging error).
        package static let missingMigrations = Code(base: .missingMigrations)
        /// A `postgresql_url` that is not a PostgreSQL URL, or names an unset environment variable.
        package static let badURL = Code(base: .badURL)
        /// The PostgreSQL server refused the connection, or could not be reached.
        package static let unreachable = Code(base: .unreachable)
        /// The PostgreSQL server refused a statement (not an outage: the server answered with an error).
        package static let statementFailed = Code(base: .statementFailed)

        package var description: String { self.base.rawValue }
    }

    /// What went wrong.
    package var code: Code
    /// The database file concerned.
    package var path: String
    /// A message for operators.
    package var message: String
    /// The error that caused this one, if any.
    package var underlying: (any Error)?

    package init(code: Code, path: String, message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.underlying = underlying
    }

    package var description: String {
        if let underlying = self.underlying {
            return "\(self.path): \(self.message) (\(underlying))"
        }
        return "\(self.path): \(self.message)"
    }
}
