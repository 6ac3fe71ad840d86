import ArgumentParser
import Foundation

/// A time on the command line (see ``TimeFormat/parse(_:now:)``): `2026-11-24 21:05:03`, RFC 3339, or `15m`.
struct TimeArgument: ExpressibleByArgument {
    var date: Date

    init?(argument: String) {
        guard let date = TimeFormat.parse(argument) else {
            return nil
        }
        self.date = date
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
