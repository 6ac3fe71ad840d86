import Glibc
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The publish API's part in a restart without dropped connections (README "Restarts"): its idle keep-alive
/// connections go to the new server with the client connections, so that a publisher reusing one sees nothing
/// but its answers.
extension ControlServer {
    /// Stops accepting (new publish connections wait in the listen backlog for the new server) and holds reads on
    /// every connection: a request already being read goes on, no new one starts. Returns the open connections.
    func stopForHandover() async -> [any Channel] {
        self.handingOver.store(true, ordering: .relaxed)
        if let listener = self.listener.withLock({ $0 }) {
            try? await listener.close()
        }
        let channels = self.connections.all
        for channel in channels {
            channel.eventLoop.execute {
                try? channel.pipeline.syncOperations.handler(type: ControlRequestHandler.self).holdReadsForHandover()
            }
        }
        return channels
    }

    /// Serves a publish API connection an earlier server handed over: it waits for its next request, which may
    /// already be in the socket.
    func adopt(_ descriptor: CInt, on eventLoop: any EventLoop) {
        let logger = self.logger
        ClientBootstrap(group: eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.initializeConnection(channel)
                }
            }
            .withConnectedSocket(descriptor)
            .whenFailure { error in
                logger.warning(
                    "a publish API connection handed over could not be taken over",
                    metadata: ["error": "\(error)"]
                )
                Glibc.close(descriptor)
            }
    }
}
