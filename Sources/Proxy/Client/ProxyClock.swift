#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time for JWT claims.
enum ProxyClock {
    static func unixSeconds() -> Int {
        Int(time(nil))
    }
}
