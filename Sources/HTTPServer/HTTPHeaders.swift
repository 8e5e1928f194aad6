/// Case-insensitive header list that keeps every entry in the order it was added.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    private var entries: [(String, String)]

    /// Creates a header list from `(name, value)` pairs, kept in order.
    public init(_ entries: [(String, String)] = []) {
        self.entries = entries
    }

    /// Creates a header list from a literal such as `["Content-Type": "application/json"]`.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.entries = elements
    }

    /// The first value of the header `name`, compared case-insensitively; nil when absent.
    public subscript(name: String) -> String? {
        for (key, value) in entries where Self.namesEqual(key, name) { return value }
        return nil
    }

    /// Every value of the header `name`, in order.
    public func values(for name: String) -> [String] {
        entries.filter { Self.namesEqual($0.0, name) }.map(\.1)
    }

    /// Appends an entry; earlier entries with the same name stay.
    public mutating func add(_ name: String, _ value: String) {
        entries.append((name, value))
    }

    /// Replaces every entry named `name` with one entry holding `value`.
    public mutating func replaceOrAdd(_ name: String, _ value: String) {
        remove(name)
        entries.append((name, value))
    }

    /// Removes every entry named `name`.
    public mutating func remove(_ name: String) {
        entries.removeAll { Self.namesEqual($0.0, name) }
    }

    /// True when at least one entry is named `name`.
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// The number of entries.
    public var count: Int { entries.count }

    /// Iterates `(name, value)` pairs in order.
    public func makeIterator() -> IndexingIterator<[(String, String)]> {
        entries.makeIterator()
    }

    /// ASCII case-insensitive comparison, without allocating lowercased copies.
    static func namesEqual(_ a: String, _ b: String) -> Bool {
        let x = a.utf8
        let y = b.utf8
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) where p != q {
            guard lowerASCII(p) == lowerASCII(q) else { return false }
        }
        return true
    }

    private static func lowerASCII(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }
}
