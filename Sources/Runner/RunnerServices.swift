import Foundation

/// `[runner] services`, as in Pushpin. P-8's own names: `proxy` (the client listeners, routing, holds) and
/// `handler` (the publish API, ZeroMQ sockets, store). Both run in the one server process (a hold is served by
/// both at once), so the list does not split them; Pushpin's components P-8 has no use for are reported once
/// and ignored; `pushpin-proxy` and `pushpin-handler` are taken as `proxy` and `handler`.
package enum RunnerServices {
    /// What each Pushpin name means here.
    package static let pushpinNames: [String: String] = [
        "condure": "P-8 accepts client connections itself",
        "connmgr": "P-8 accepts client connections itself",
        "mongrel2": "P-8 accepts client connections itself",
        "m2adapter": "P-8 accepts client connections itself",
        "zurl": "P-8 connects to backends itself",
    ]

    /// The warnings for a `services` list (empty when it only names `proxy` and `handler`, or is unset).
    package static func report(_ services: [String]) -> [String] {
        var warnings: [String] = []
        var ignored: [String] = []
        let own: Set<String> = ["proxy", "handler", "pushpin-proxy", "pushpin-handler"]
        for name in services where !own.contains(name) {
            if let meaning = Self.pushpinNames[name] {
                ignored.append("\(name) (\(meaning))")
            } else {
                warnings.append("[runner] services: unknown service \"\(name)\" ignored (P-8 runs proxy and handler)")
            }
        }
        if !ignored.isEmpty {
            warnings.append(
                "[runner] services: Pushpin's " + ignored.joined(separator: ", ")
                    + " ignored; P-8 runs proxy and handler in one server process"
            )
        }
        let named = Set(services.filter(own.contains).map { $0.replacingOccurrences(of: "pushpin-", with: "") })
        if !services.isEmpty && named.count < 2 {
            warnings.append("[runner] services: proxy and handler cannot run apart; running both")
        }
        return warnings
    }
}
