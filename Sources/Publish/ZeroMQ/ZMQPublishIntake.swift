package import GRIP
package import Logging
import ServiceLifecycle
import Synchronization

/// A ZeroMQ publish input (grip-spec §4.3): the PULL socket on `push_in_spec`, or the SUB socket on
/// `push_in_sub_specs`. Items go through the same commit and fan-out as HTTP publishes
/// (``PublishHub/publish(_:)``), one input's items committed in the order they arrived.
///
/// The socket's thread parses each message and queues the item; this service commits whatever has queued
/// since the last commit as one batch. A malformed message is logged, counted
/// (``PublishCounters/malformedFrames``) and dropped.
///
/// The SUB socket subscribes to a channel while the channel has subscribers, as Pushpin does, so a publisher
/// on an XPUB socket sends only what someone waits for.
package final class ZMQPublishIntake: Service, Sendable {
    /// Which socket this is.
    package enum Kind: String, Sendable {
        /// PULL: one frame per message, the item.
        case pull = "push_in_spec"
        /// SUB: two frames per message, the channel (the topic) and the item.
        case sub = "push_in_sub_specs"
    }

    private let kind: Kind
    private let hub: PublishHub
    private let loop: ZMQSocketLoop
    private let queue: IntakeQueue<PublishItem>
    private let logger: Logger
    /// The SUB socket's topics; touched only on the loop's thread.
    private let topics = Mutex<Set<String>>([])

    /// Items parsed but not yet committed beyond which the socket stops receiving (libzmq then queues up to its
    /// high-water mark and a PUSH publisher blocks).
    static let maxQueued = 10_000
    /// Most items in one commit.
    static let maxBatch = 1_000

    /// Creates the input for a bound PULL socket or a bound or connected SUB socket.
    ///
    /// - Throws: the system's error when the socket's thread cannot be set up.
    package init(kind: Kind, socket: ZMQSocket, hub: PublishHub, logger: Logger) throws {
        let queue = IntakeQueue<PublishItem>()
        self.kind = kind
        self.hub = hub
        self.queue = queue
        self.logger = logger
        let counters = hub.counters
        self.loop = try ZMQSocketLoop(
            socket: socket,
            name: "p8-zmq-\(kind == .pull ? "pull" : "sub")",
            onMessage: { frames in
                do throws(PublishError) {
                    queue.append(try Self.item(from: frames, kind: kind))
                } catch {
                    counters.malformedFrames.add(1, ordering: .relaxed)
                    logger.info(
                        "malformed ZeroMQ publish message dropped",
                        metadata: ["p8.zmq.socket": "\(kind.rawValue)", "error": "\(error)"]
                    )
                }
            },
            isPaused: { queue.count >= Self.maxQueued }
        )
    }

    /// The item a received message carries.
    ///
    /// - Throws: ``PublishError`` for a wrong number of frames, a bad encoding or an invalid item.
    package static func item(from frames: [[UInt8]], kind: Kind) throws(PublishError) -> PublishItem {
        switch kind {
        case .pull:
            guard frames.count == 1 else {
                throw PublishError(.invalidItem, "expected 1 frame, got \(frames.count)")
            }
            return try PublishItem.parse(zmqMessage: frames[0])
        case .sub:
            guard frames.count == 2 else {
                throw PublishError(.invalidItem, "expected 2 frames (channel, item), got \(frames.count)")
            }
            guard let channel = String(validating: frames[0], as: UTF8.self), !channel.isEmpty else {
                throw PublishError(.invalidItem, "the channel frame is empty or not UTF-8")
            }
            return try PublishItem.parse(zmqMessage: frames[1], channel: channel)
        }
    }

    /// Follows `channel`'s subscribers on the SUB socket: subscribes to the topic while the channel has
    /// subscribers, unsubscribes when it has none. Call it whenever the channel gains its first or loses its
    /// last subscriber; the hub is asked again on the socket's thread, so calls may come in any order.
    package func subscriptionChanged(channel: String) {
        guard self.kind == .sub else { return }
        self.loop.perform { [self] socket in
            let wanted = !self.hub.subscribers(of: channel).isEmpty
            let change: Bool? = self.topics.withLock { topics in
                switch (wanted, topics.contains(channel)) {
                case (true, false):
                    topics.insert(channel)
                    return true
                case (false, true):
                    topics.remove(channel)
                    return false
                default:
                    return nil
                }
            }
            guard let change else { return }
            do {
                if change {
                    try socket.subscribe(Array(channel.utf8))
                } else {
                    try socket.unsubscribe(Array(channel.utf8))
                }
            } catch {
                self.logger.warning("SUB socket subscription not changed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Receives and commits until graceful shutdown, then stops the socket and commits what it had received.
    package func run() async throws {
        self.loop.start()
        await withGracefulShutdownHandler {
            while true {
                let batch = await self.queue.next(limit: Self.maxBatch)
                guard !batch.isEmpty else { break }
                self.loop.wake()
                await self.commit(batch)
            }
        } onGracefulShutdown: {
            self.queue.finish()
        }
        await self.loop.stop()
        var rest = await self.queue.next(limit: Self.maxBatch)
        while !rest.isEmpty {
            await self.commit(rest)
            rest = await self.queue.next(limit: Self.maxBatch)
        }
    }

    private func commit(_ batch: [PublishItem]) async {
        do {
            try await self.hub.publish(batch)
        } catch {
            // ZeroMQ has no acknowledgement to refuse: the items are lost, as with Pushpin when it cannot deliver.
            self.logger.warning(
                "ZeroMQ publish not committed; items dropped",
                metadata: ["p8.zmq.socket": "\(self.kind.rawValue)", "p8.items": "\(batch.count)", "error": "\(error)"]
            )
        }
    }
}
