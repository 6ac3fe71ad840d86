import Foundation

/// Sizes for people: `512 B`, `12.3 KiB`, `4.0 MiB`.
enum ByteCount {
    static func human(_ bytes: Int) -> String {
        if bytes < 1024 {
            return "\(bytes) B"
        }
        var value = Double(bytes) / 1024
        for unit in ["KiB", "MiB", "GiB"] {
            if value < 1024 || unit == "GiB" {
                return String(format: "%.1f", value) + " " + unit
            }
            value /= 1024
        }
        return "\(bytes) B"
    }
}
