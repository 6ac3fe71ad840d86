/// An aligned text table for people: a header row, columns two spaces apart, numbers right-aligned.
struct Table {
    var headers: [String]
    /// The indexes of right-aligned columns.
    var rightAligned: Set<Int> = []
    var rows: [[String]] = []

    init(_ headers: [String], rightAligned: Set<Int> = []) {
        self.headers = headers
        self.rightAligned = rightAligned
    }

    mutating func append(_ row: [String]) {
        self.rows.append(row)
    }

    /// The table, each line ending with a newline; the last column is not padded.
    func render() -> String {
        var widths = self.headers.map(\.count)
        for row in self.rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        var text = ""
        for row in [self.headers] + self.rows {
            var cells: [String] = []
            for (index, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: max(0, widths[index] - cell.count))
                if self.rightAligned.contains(index) {
                    cells.append(padding + cell)
                } else if index == row.count - 1 {
                    cells.append(cell)
                } else {
                    cells.append(cell + padding)
                }
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        return text
    }
}
