/// A start-up failure the runner reports in one line and exits on.
package struct RunnerError: Error, CustomStringConvertible {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}
