import Foundation

/// The delivery filters of grip-spec §3.7 (`skip-self`, `skip-users`, `require-sub`), shared by held requests
/// and WebSockets.
enum DeliveryFilters {
    /// Whether `delivery` passes `filters` for a subscriber whose meta `user` is `user` and who is subscribed
    /// to the channels `subscribed` (named with and without the route prefix).
    static func passes(_ delivery: Delivery, filters: [String], user: String?, subscribed: (String) -> Bool) -> Bool {
        for filter in filters {
            switch filter {
            case "skip-self":
                if let user, !user.isEmpty, delivery.meta["sender"] == user { return false }
            case "skip-users":
                if let user, !user.isEmpty, let skipped = delivery.meta["skip_users"],
                    skipped.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == user })
                {
                    return false
                }
            case "require-sub":
                if let required = delivery.meta["require_sub"], !required.isEmpty, !subscribed(required) {
                    return false
                }
            default:
                continue
            }
        }
        return true
    }
}
