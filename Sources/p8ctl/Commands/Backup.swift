import ArgumentParser
import Foundation
import Store

extension P8Ctl {
    /// `p8ctl backup`: an online, consistent copy of the database.
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backup",
            abstract: "Copy the database, consistently, to a new SQLite file (online: p8 may keep running).",
            discussion: """
                From SQLite: SQLite's online backup from a read-only connection, one consistent snapshot \
                taken while p8 goes on writing. From PostgreSQL (--db postgresql://..., or a config with \
                backend=postgresql): every channel with its retained items, their sequences and ids, a \
                channel at a time; to move a site from PostgreSQL to SQLite, stop the nodes, back up, and \
                start one p8 on the file (clients' cursors stay valid on the copy). Hold records and items \
                still waiting in the reordering buffer are not copied. The copy gets a new epoch. Refuses \
                to overwrite an existing file unless --force.

                Examples:
                  p8ctl backup /var/backups/p8-$(date +%F).sqlite
                  p8ctl backup --db postgresql://p8@db.internal/p8 p8.sqlite
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
            let sqlite = store as? ChannelStore
            let source = sqlite.map { URL(fileURLWithPath: $0.path).standardizedFileURL.path } ?? store.location
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
                if let sqlite {
                    copy = try await sqlite.backup(to: destination)
                } else {
                    copy = try await ChannelStore.copy(from: store, to: destination)
                }
            } catch let error as StoreError where error.code == .unreachable {
                throw CtlError.reporting(error)
            } catch {
                throw CtlError(.cannotCreate, "cannot write \(self.file): \(CtlError.reporting(error).message)")
            }
            let bytes = (try? URL(fileURLWithPath: destination).resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
            if self.options.json {
                let document = JSONValue.object([
                    ("source", .string(source)),
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
                "backed up \(source) to \(destination): \(ByteCount.human(bytes)), \(copy.channelCount) "
                    + "channel\(copy.channelCount == 1 ? "" : "s"), \(copy.itemCount) item\(copy.itemCount == 1 ? "" : "s"), "
                    + "new epoch \(copy.epoch)"
            )
        }
    }
}
