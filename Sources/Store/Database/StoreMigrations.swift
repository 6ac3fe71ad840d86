import Foundation
package import GRDB

/// The schema migrations: one per `migrations/NNNN_name.sql` file, in file-name order, identified by the file stem.
///
/// The `.sql` files are the only definition of the schema; they reach the bundle flat through the `Migrations`
/// symlink. A shipped file is never edited or renamed (its stem is what the database records as applied).
package enum StoreMigrations {
    /// The `PRAGMA application_id` of a P-8 database ("P8" in the high bytes), set by the first migration.
    package static let applicationID: Int = 0x5038_0001

    /// The migration files in the order they apply, as (identifier, SQL).
    package static func files() throws -> [(identifier: String, sql: String)] {
        let urls = Bundle.module.paths(forResourcesOfType: "sql", inDirectory: nil).map { URL(fileURLWithPath: $0) }
        let files = try urls.sorted { $0.lastPathComponent < $1.lastPathComponent }.map { url in
            (
                identifier: url.deletingPathExtension().lastPathComponent,
                sql: try String(contentsOf: url, encoding: .utf8)
            )
        }
        guard !files.isEmpty else {
            throw StoreError(
                code: .missingMigrations,
                path: Bundle.module.bundlePath,
                message: "no migration files in the Store bundle"
            )
        }
        return files
    }

    /// A migrator that applies every migration file (or those up to and including `lastIdentifier`).
    package static func migrator(upTo lastIdentifier: String? = nil) throws -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for file in try self.files() {
            migrator.registerMigration(file.identifier) { db in
                try db.execute(sql: file.sql)
            }
            if file.identifier == lastIdentifier {
                break
            }
        }
        return migrator
    }
}
