import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl backup`: an online, consistent copy of the database.
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backup",
            abstract: "Copy the database, consistently, to a new file (online: p8 may keep running).",
            discussion: """
                Uses SQLite's online backup from a read-only connection: the copy is one consistent \
                snapshot, taken while p8 goes on writing. The copy gets a new epoch, so that once restored, \
                cursors taken from the live database are not resumed against it silently. Refuses to \
                overwrite an existing file unless --force.

                Example:
                  p8ctl backup /var/backups/p8-$(date +%F).sqlite
                """
        )

        @Argument(help: ArgumentHelp("The file to write.", valueName: "file"), completion: .file())
        var file: String

        @Flag(help: "Overwrite the file if it exists.")
        var force = false

        @OptionGroup(title: "Database and output") var options: GlobalOptions

        func run() async throws {
            let store = try await self.options.openReadOnly()
            let manager = FileManager.default
            let source = URL(fileURLWithPath: store.path).standardizedFileURL.path
            let destination = URL(fileURLWithPath: self.file).standardizedFileURL.path
            if source == destination {
                throw CtlError(.cannotCreate, "\(self.file): that is the database itself")
            }
            if manager.fileExists(atPath: destination) {
                guard self.force else {
                    throw CtlError(.cannotCreate, "\(self.file) exists: pass --force to overwrite it")
                }
                for suffix in ["", "-wal", "-shm", "-journal"] where manager.fileExists(atPath: destination + suffix) {
                    try manager.removeItem(atPath: destination + suffix)
                }
            }
            let copy: BackupSummary
            do {
                copy = try await store.backup(to: destination)
            } catch {
                throw CtlError(.cannotCreate, "cannot write \(self.file): \(CtlError.reporting(error).message)")
            }
            let bytes = (try? URL(fileURLWithPath: destination).resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
            if self.options.json {
                let document = JSONValue.object([
                    ("source", .string(store.path)),
                    ("destination", .string(destination)),
                    ("bytes", .int(bytes)),
                    ("channels", .int(copy.channelCount)),
                    ("items", .int(copy.itemCount)),
                    ("epoch", .string(copy.epoch)),
                ])
                Output.line(document.pretty)
                return
            }
            Output.line(
                "backed up \(store.path) to \(destination): \(ByteCount.human(bytes)), \(copy.channelCount) "
                    + "channel\(copy.channelCount == 1 ? "" : "s"), \(copy.itemCount) item\(copy.itemCount == 1 ? "" : "s"), "
                    + "new epoch \(copy.epoch)"
            )
        }
    }
}
