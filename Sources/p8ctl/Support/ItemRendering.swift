import Foundation
import Store

/// How `p8ctl` shows stored items and their content.
enum ItemRendering {
    /// The item as a JSON object, with its stored formats (and its meta, when it has some) when `content` is set.
    ///
    /// Formats that are JSON are embedded as they are (`formats`); other UTF-8 text is a string (`formatsText`);
    /// anything else is base64 (`formatsBase64`).
    static func json(_ item: StoredItem, content: Bool) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("channel", .string(item.channel)),
            ("sequence", .int(item.sequence)),
            ("id", .string(item.id)),
            ("prevId", .optional(item.prevId)),
            ("publishedAt", .string(TimeFormat.rfc3339(item.publishedAt))),
            ("size", .int(item.size)),
        ]
        if content {
            members.append(Self.formatsMember(item.formats))
            if let meta = Self.metaJSON(item) {
                members.append(("meta", .raw(meta)))
            }
        }
        return .object(members)
    }

    /// The item's stored meta (a JSON object of strings), on one line; nil when it has none or it is not JSON.
    static func metaJSON(_ item: StoredItem) -> String? {
        guard let meta = item.meta, (try? JSONSerialization.jsonObject(with: meta)) is [String: Any],
            let text = String(data: meta, encoding: .utf8)
        else {
            return nil
        }
        return text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
    }

    private static func formatsMember(_ formats: Data) -> (String, JSONValue) {
        if let text = String(data: formats, encoding: .utf8) {
            if !text.isEmpty, (try? JSONSerialization.jsonObject(with: formats, options: [.fragmentsAllowed])) != nil {
                // In valid JSON, line breaks can only be whitespace between tokens: one line keeps it NDJSON.
                let oneLine = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
                return ("formats", .raw(oneLine))
            }
            return ("formatsText", .string(text))
        }
        return ("formatsBase64", .string(formats.base64EncodedString()))
    }

    /// The content on one line for people: the text with line breaks and control characters escaped, or
    /// `base64:...` when it is not UTF-8.
    static func contentText(_ formats: Data) -> String {
        guard let text = String(data: formats, encoding: .utf8) else {
            return "base64:" + formats.base64EncodedString()
        }
        var line = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\t": line += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                line += "\\u{\(String(scalar.value, radix: 16))}"
            default: line.unicodeScalars.append(scalar)
            }
        }
        return line
    }

    /// A table of items: sequence, id, prev-id, publish time, age, size, and the content if asked.
    static func table(_ items: [StoredItem], content: Bool, now: Date = Date()) -> String {
        var headers = ["SEQ", "ID", "PREV-ID", "PUBLISHED", "AGE", "SIZE"]
        if content {
            headers.append("CONTENT")
        }
        var table = Table(headers, rightAligned: [0, 5])
        for item in items {
            var row = [
                String(item.sequence), item.id, item.prevId ?? "-", TimeFormat.human(item.publishedAt),
                TimeFormat.age(item.publishedAt, now: now), ByteCount.human(item.size),
            ]
            if content {
                row.append(Self.contentText(item.formats))
            }
            table.append(row)
        }
        return table.render()
    }

    /// One line per item for streams (`tail`): time, channel, sequence, id, size, content.
    static func line(_ item: StoredItem) -> String {
        "\(TimeFormat.human(item.publishedAt))  \(item.channel)  #\(item.sequence)  \(item.id)  "
            + "\(ByteCount.human(item.size))  \(Self.contentText(item.formats))"
    }
}
