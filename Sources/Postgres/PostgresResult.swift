/// One row of a result, values in PostgreSQL's text format.
public struct PostgresRow: Sendable {
    let columns: ColumnIndex
    let values: [String?]

    /// Creates a row from column names and values (for tests and fakes).
    public init(columns: [String], values: [String?]) {
        self.columns = ColumnIndex(columns)
        self.values = values
    }

    init(index: ColumnIndex, values: [String?]) {
        self.columns = index
        self.values = values
    }

    /// The text value of the named column; nil for NULL or an unknown column.
    public subscript(_ column: String) -> String? {
        guard let index = columns.positions[column], index < values.count else { return nil }
        return values[index]
    }

    /// The text value at a 0-based position; nil for NULL or an index out of range.
    public subscript(_ index: Int) -> String? {
        guard values.indices.contains(index) else { return nil }
        return values[index]
    }
}

/// Column name lookup shared by all rows of one result.
final class ColumnIndex: Sendable {
    let names: [String]
    let positions: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        // The first column of a name wins, as in most drivers.
        for (index, name) in names.enumerated() where positions[name] == nil { positions[name] = index }
        self.positions = positions
    }
}

/// What a statement returned.
public struct PostgresResult: Sendable {
    /// Column names in order.
    public var columns: [String]
    /// The rows, in the order the server sent them.
    public var rows: [PostgresRow]
    /// Rows inserted, updated, deleted or selected, from `PQcmdTuples`; 0 when the command reports none.
    public var affectedRows: Int

    /// Creates a result (for tests and fakes).
    public init(columns: [String], rows: [PostgresRow], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }
}
