import Foundation

/// The running server's `GET /stats` answer: counters, live subscribers by channel, and which database it uses.
struct ServerStats {
    var counters: [(name: String, value: Int)]
    var subscribers: [(channel: String, count: Int)]
    /// The epoch of the server's database, to tell whether it is the database `p8ctl` reads.
    var epoch: String?

    /// Fetches and decodes `/stats`.
    ///
    /// - Throws: ``CtlError``: 69 when the server cannot be reached, 76/77 when it answers an error or not JSON.
    static func fetch(from client: ControlClient) throws -> ServerStats {
        let response = try client.get("/stats")
        try response.requireSuccess(from: client)
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let counters = object["counters"] as? [String: Any],
            let channels = object["channels"] as? [String: Any]
        else {
            throw CtlError(.serverError, "\(client.url)/stats did not answer the stats JSON (is it p8?)")
        }
        return ServerStats(
            counters: counters.compactMap { name, value in (value as? Int).map { (name: name, value: $0) } }.sorted {
                $0.name < $1.name
            },
            subscribers: channels.compactMap { channel, value in
                ((value as? [String: Any])?["subscribers"] as? Int).map { (channel: channel, count: $0) }
            }.sorted { $0.channel < $1.channel },
            epoch: (object["store"] as? [String: Any])?["epoch"] as? String
        )
    }
}
