package import Logging

extension Logger.Level {
    /// Pushpin's numeric `log_level` (0 error, 1 warning, 2 info, 3 debug; higher is more verbose), as
    /// `[runner] log_level`, `--loglevel` and the route option `log_level` give it.
    package init(pushpinLevel: Int) {
        switch pushpinLevel {
        case ..<1: self = .error
        case 1: self = .warning
        case 2: self = .info
        case 3: self = .debug
        default: self = .trace
        }
    }
}
