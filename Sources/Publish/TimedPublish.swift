package import GRIP

extension PublishHub {
    /// ``publish(_:)``, recording how long the commit took in the attached metrics (the publish inputs call
    /// this one).
    package func publishTimed(_ items: [PublishItem]) async throws {
        let start = ContinuousClock.now
        try await self.publish(items)
        self.counters.metrics?.committed(after: .now - start)
    }
}
