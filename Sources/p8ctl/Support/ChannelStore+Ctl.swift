import Store

/// Reads shared by the commands: a channel that must exist, and items after a cursor a page at a time.
extension ChannelLogStore {
    /// Every channel, by name.
    func channelSummaries() async throws -> [ChannelSummary] {
        try await self.channelSummaries(prefix: "")
    }

    /// The summary of `channel`, or an ``CtlError/Status/unknownChannel`` error.
    func summary(ofChannel channel: String) async throws -> ChannelSummary {
        guard let summary = try await self.channelSummaries(prefix: channel).first(where: { $0.name == channel })
        else {
            throw CtlError(.unknownChannel, "unknown channel \"\(channel)\": nothing was ever published to it here")
        }
        return summary
    }

    /// Every retained item of `channel` after `cursor`, a page at a time, until `body` returns false.
    ///
    /// - Throws: ``CtlError`` when the cursor is older than retained or unknown.
    func forEachPage(
        channel: String,
        after cursor: Cursor,
        describing cursorText: String,
        _ body: ([StoredItem]) throws -> Bool
    ) async throws {
        var cursor = cursor
        while true {
            let result = try await self.read(channel: channel, after: cursor, limit: 1000)
            switch result.status {
            case .found(let items):
                guard let last = items.last, try body(items), items.count == 1000 else {
                    return
                }
                cursor = .sequence(last.sequence)
            case .olderThanRetained:
                let oldest = try await self.oldest(channel: channel)
                throw CtlError(
                    .cursorTooOld,
                    "\(cursorText) on channel \"\(channel)\" is older than what is retained ("
                        + (oldest.map { "the oldest retained item is #\($0.sequence), id \($0.id)" }
                            ?? "every item has been trimmed")
                        + "): items after it have been trimmed, reading from it would skip them"
                )
            case .unknownCursor:
                if case .sequence = cursor {
                    throw CtlError(
                        .unknownCursor,
                        "\(cursorText) is after the newest item of channel \"\(channel)\" (sequence "
                            + "\(result.lastSequence)) in this database (epoch \(self.epoch))"
                    )
                }
                throw CtlError(
                    .unknownCursor,
                    "\(cursorText) is not a retained item of channel \"\(channel)\" in this database (epoch "
                        + "\(self.epoch)): never published here, or trimmed since; reading from it could skip items"
                )
            }
        }
    }
}
