/// The one limit for a bounded wait in tests. Waits return as soon as their condition holds, so the limit costs
/// nothing when things work; it is generous because CI machines are loaded.
package let defaultWait: Duration = .seconds(15)

/// Polls `condition` until it holds (returns true) or `timeout` passes (returns whether it holds then).
package func eventually(
    timeout: Duration = defaultWait,
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}
