import Foundation

/// `[runner] services`, as in Pushpin. P-8's own names: `proxy` (the client listeners, routing, holds) and
/// `handler` (the publish API, ZeroMQ sockets, store). Both run in the one server process (a hold is served by
/// both at once), so the list does not split them; Pushpin's components P-8 has no use for are reported once
/// and ignored.
enum RunnerServices {
    /// What each Pushpin name means here.
    static let pushpinNames: [String: String] = [
        "condure": "P-8 accepts client connections itself",
        "connmgr": "P-8 accepts client connections itself",
        "mongrel2": "P-8 accepts client connections itself",
        "m2adapter": "P-8 accepts client connections itself",
        "zurl": "P-8 connects to backends itself",
        "pushpin-proxy": "P-8's proxy service",
        "pushpin-handler": "P-8's handler service",
    ]

    /// The warnings for a `services` list (empty when it only names `proxy` and `handler`, or is unset).
    static func report(_ services: [String]) -> [String] {
        var warnings: [String] = []
        var ignored: [String] = []
        for name in services where name != "proxy" && name != "handler" {
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
        let own = services.filter { $0 == "proxy" || $0 == "handler" || $0.hasPrefix("pushpin-") }
        if !services.isEmpty && Set(own.map { $0.replacingOccurrences(of: "pushpin-", with: "") }).count < 2 {
            warnings.append("[runner] services: proxy and handler cannot run apart; running both")
        }
        return warnings
    }
}
