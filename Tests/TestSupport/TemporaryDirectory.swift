package import Foundation

/// A fresh temporary directory, removed with everything in it when the last reference goes.
package final class TemporaryDirectory: Sendable {
    package let url: URL

    package init(prefix: String = "p8-tests") throws {
        self.url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true)
    }

    /// The path of `name` in the directory.
    package func path(_ name: String) -> String {
        self.url.appendingPathComponent(name).path
    }

    deinit {
        try? FileManager.default.removeItem(at: self.url)
    }
}
