import Foundation
package import GRIP

/// Where the routes come from: the routes file named by the config (reloadable), or route lines given on the
/// command line (`p8 --route`), which replace the file as Pushpin's runner does.
package enum RoutesSource: Sendable, Equatable {
    case file(String)
    case lines([String])

    /// Reads and parses the routes; invalid lines are skipped and reported in `warnings`.
    package func load() throws -> (table: RouteTable, warnings: [String]) {
        switch self {
        case .file(let path):
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw RunnerError("cannot read the routes file \(path): \(error.localizedDescription)")
            }
            return RouteTable.parse(text)
        case .lines(let lines):
            return RouteTable.parse(lines.joined(separator: "\n"))
        }
    }
}
