import Synchronization

extension PublishHub {
    /// The command socket's `refresh` with a `cid` (grip-spec §4.4): the WebSocket with this id makes a backend
    /// request now. Returns false when no open (GRIP) WebSocket has this id.
    package func refreshWebSocket(id: String) -> Bool {
        guard let session = self.webSockets.withLock({ $0[id] }) else { return false }
        session.refresh()
        return true
    }

    /// `refresh` with a `channel`: every WebSocket subscribed to it makes a backend request now.
    package func refreshWebSockets(channel: String) {
        let sessions = self.webSockets.withLock { Array($0.values) }
        for session in sessions where session.channels.contains(where: { $0.name == channel }) {
            session.refresh()
        }
    }
}
