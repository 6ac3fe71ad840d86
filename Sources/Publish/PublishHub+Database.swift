import Store

extension PublishHub {
    /// The database the hub commits to: its file and its epoch (for the control API's `GET /stats`, so that a
    /// client can tell which database a running server uses).
    package var database: (path: String, epoch: String) {
        (self.store.path, self.store.epoch)
    }
}
