import GRIP
import Synchronization

/// Which subscribers each channel has: held requests (``HoldSession``) and WebSocket sessions. It tells an observer
/// when a channel gains its first subscriber or loses its last (the ZeroMQ SUB socket subscribes upstream by
/// channel).
final class SubscriptionRegistry: Sendable {
    private struct State {
        var channels: [String: [ObjectIdentifier: any ChannelSubscriber]] = [:]
        /// The held requests in progress, by identity.
        var holds: [ObjectIdentifier: HoldSession] = [:]
    }

    /// The observer, in a struct: a closure kept directly in a `Mutex` comes back from `withLock { $0 }` wrapped in
    /// two more reabstraction thunks on every read (see `Store.CommitObserver`), so every notification went deeper
    /// than the last and holding N one-channel requests cost O(N²) (issue 12).
    private struct Observer: Sendable {
        let notify: @Sendable (_ channel: String, _ subscribed: Bool) -> Void
    }

    private let state = Mutex(State())
    private let observer = Mutex<Observer?>(nil)

    /// Sets the one observer of channels gaining their first subscriber (`true`) or losing their last (`false`).
    func observe(_ observer: @escaping @Sendable (_ channel: String, _ subscribed: Bool) -> Void) {
        self.observer.withLock { $0 = Observer(notify: observer) }
    }

    /// Registers a held request on each of its channels.
    func add(_ hold: HoldSession) {
        let added = self.state.withLock { state -> [String] in
            let key = ObjectIdentifier(hold)
            state.holds[key] = hold
            var added: [String] = []
            for channel in hold.request.channels {
                if state.channels[channel.name] == nil {
                    added.append(channel.name)
                }
                state.channels[channel.name, default: [:]][key] = hold
            }
            return added
        }
        self.notify(added, subscribed: true)
    }

    /// Unregisters a held request; returns false if it was not registered (it ended before).
    func remove(_ hold: HoldSession) -> Bool {
        let removed = self.state.withLock { state -> [String]? in
            let key = ObjectIdentifier(hold)
            guard state.holds.removeValue(forKey: key) != nil else { return nil }
            return Self.remove(key, from: hold.request.channels.map(\.name), in: &state)
        }
        guard let removed else { return false }
        self.notify(removed, subscribed: false)
        return true
    }

    /// Adds a subscriber (a WebSocket session) to one channel.
    func add(_ subscriber: any ChannelSubscriber, channel: String) {
        let isFirst = self.state.withLock { state -> Bool in
            let isFirst = state.channels[channel] == nil
            state.channels[channel, default: [:]][ObjectIdentifier(subscriber)] = subscriber
            return isFirst
        }
        if isFirst {
            self.notify([channel], subscribed: true)
        }
    }

    /// Removes a subscriber (a WebSocket session) from channels.
    func remove(_ subscriber: any ChannelSubscriber, channels: [String]) {
        let removed = self.state.withLock { state in
            Self.remove(ObjectIdentifier(subscriber), from: channels, in: &state)
        }
        self.notify(removed, subscribed: false)
    }

    /// The subscribers of a channel right now.
    func subscribers(of channel: String) -> [any ChannelSubscriber] {
        self.state.withLock { state in
            state.channels[channel].map { Array($0.values) } ?? []
        }
    }

    /// Every held request in progress.
    var holds: [HoldSession] {
        self.state.withLock { Array($0.holds.values) }
    }

    /// Live subscribers by channel.
    func subscriberCounts() -> [String: Int] {
        self.state.withLock { state in
            state.channels.mapValues(\.count)
        }
    }

    /// Live subscribers of `channel` by the stats socket's mode: a hold's mode (`response`, `stream`), `ws` for a
    /// WebSocket session.
    func modes(of channel: String) -> [String: Int] {
        self.state.withLock { state in
            var counts: [String: Int] = [:]
            for subscriber in state.channels[channel]?.values ?? [:].values {
                let mode = (subscriber as? HoldSession)?.request.mode.rawValue ?? "ws"
                counts[mode, default: 0] += 1
            }
            return counts
        }
    }

    /// Removes a subscriber from channels; returns the channels left without subscribers.
    private static func remove(_ key: ObjectIdentifier, from channels: [String], in state: inout State) -> [String] {
        var removed: [String] = []
        for channel in channels {
            state.channels[channel]?[key] = nil
            if state.channels[channel]?.isEmpty == true {
                state.channels[channel] = nil
                removed.append(channel)
            }
        }
        return removed
    }

    private func notify(_ channels: [String], subscribed: Bool) {
        guard !channels.isEmpty, let observer = self.observer.withLock({ $0 }) else { return }
        for channel in channels {
            observer.notify(channel, subscribed)
        }
    }
}
