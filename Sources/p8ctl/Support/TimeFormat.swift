import Foundation

/// Times as `p8ctl` prints and reads them: local `2026-11-24 21:05:03` and relative ages for people,
/// RFC 3339 in UTC for scripts.
enum TimeFormat {
    /// `yyyy-MM-dd HH:mm:ss` in the local time zone (`TZ`).
    static func human(_ date: Date) -> String {
        let parts = Calendar(identifier: .gregorian).dateComponents(in: TimeZone.current, from: date)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d",
            parts.year ?? 0,
            parts.month ?? 0,
            parts.day ?? 0,
            parts.hour ?? 0,
            parts.minute ?? 0,
            parts.second ?? 0
        )
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-24T21:05:03.120Z`.
    static func rfc3339(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone.current
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let whole = Date(timeIntervalSince1970: Double(milliseconds.floorDivided(by: 1000)))
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: whole)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            parts.year ?? 0,
            parts.month ?? 0,
            parts.day ?? 0,
            parts.hour ?? 0,
            parts.minute ?? 0,
            parts.second ?? 0,
            Int(milliseconds - milliseconds.floorDivided(by: 1000) * 1000)
        )
    }

    /// How long ago `date` was, roughly: `4s ago`, `12m ago`, `3h ago`, `2d ago` (or `in 20s` for the future).
    static func age(_ date: Date, now: Date = Date()) -> String {
        let seconds = Int(now.timeIntervalSince(date).rounded(.down))
        let magnitude = abs(seconds)
        let text: String
        switch magnitude {
        case ..<60:
            text = "\(magnitude)s"
        case ..<3600:
            text = "\(magnitude / 60)m"
        case ..<(48 * 3600):
            text = "\(magnitude / 3600)h"
        default:
            text = "\(magnitude / 86400)d"
        }
        return seconds < 0 ? "in \(text)" : "\(text) ago"
    }

    /// Reads a time argument: RFC 3339 (`2026-11-24T21:05:03Z`, with an offset or fractional seconds), a local
    /// `2026-11-24 21:05:03` or `2026-11-24` (time-zone `TZ`), or an age such as `90s`, `15m`, `2h`, `7d` (ago).
    static func parse(_ text: String, now: Date = Date()) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let age = Self.parseAge(trimmed) {
            // Before year 1 the Gregorian calendar (and RFC 3339) has no way to write the time.
            let date = now.addingTimeInterval(-age)
            return date >= Self.earliest ? date : nil
        }
        return Self.parseDate(trimmed)
    }

    /// `0001-01-01T00:00:00Z`, the earliest time p8ctl reads or prints.
    static let earliest = Date(timeIntervalSince1970: -62_135_596_800)

    private static func parseAge(_ text: String) -> TimeInterval? {
        guard let unit = text.last, let count = Int(text.dropLast()), count >= 0 else {
            return nil
        }
        switch unit {
        case "s": return TimeInterval(count)
        case "m": return TimeInterval(count) * 60
        case "h": return TimeInterval(count) * 3600
        case "d": return TimeInterval(count) * 86400
        case "w": return TimeInterval(count) * 7 * 86400
        default: return nil
        }
    }

    /// `YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]][Z|±HH:MM]`.
    private static func parseDate(_ text: String) -> Date? {
        let scalars = Array(text.unicodeScalars)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= scalars.count else { return nil }
            var value = 0
            for scalar in scalars[index..<(index + digits)] {
                guard let digit = Int(String(scalar)), scalar.isASCII else { return nil }
                value = value * 10 + digit
            }
            index += digits
            return value
        }
        func expect(_ character: Unicode.Scalar) -> Bool {
            guard index < scalars.count, scalars[index] == character else { return false }
            index += 1
            return true
        }
        var parts = DateComponents()
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2) else {
            return nil
        }
        parts.year = year
        parts.month = month
        parts.day = day
        parts.hour = 0
        parts.minute = 0
        parts.second = 0
        var fraction = 0.0
        var zone = TimeZone.current
        if index < scalars.count {
            guard expect(" ") || expect("T") || expect("t"), let hour = number(2), hour < 24, expect(":"),
                let minute = number(2), minute < 60
            else {
                return nil
            }
            parts.hour = hour
            parts.minute = minute
            if expect(":") {
                guard let second = number(2), second < 60 else { return nil }
                parts.second = second
                if expect(".") {
                    let start = index
                    while index < scalars.count, scalars[index].properties.numericType != nil, scalars[index].isASCII {
                        index += 1
                    }
                    guard index > start,
                        let value = Double("0." + String(String.UnicodeScalarView(scalars[start..<index])))
                    else {
                        return nil
                    }
                    fraction = value
                }
            }
            if expect("Z") || expect("z") {
                zone = TimeZone(identifier: "UTC") ?? zone
            } else if index < scalars.count {
                let sign: Int
                if expect("+") {
                    sign = 1
                } else if expect("-") {
                    sign = -1
                } else {
                    return nil
                }
                guard let hours = number(2), expect(":"), let minutes = number(2), minutes < 60,
                    let offset = TimeZone(secondsFromGMT: sign * (hours * 3600 + minutes * 60))
                else {
                    return nil
                }
                zone = offset
            }
        }
        guard index == scalars.count else {
            return nil
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        guard (1...12).contains(month), (1...31).contains(day), let date = calendar.date(from: parts),
            calendar.component(.day, from: date) == day
        else {
            return nil
        }
        // Year 0000 reads as 1 BC, which prints as year 1 (the era is not printed): refused, as ages before it.
        let time = date.addingTimeInterval(fraction)
        return time >= Self.earliest ? time : nil
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
