/// Case-insensitive header list that keeps every entry in the order it was added.
///
/// A request's headers are kept as received, in one byte block (`HeaderBlock`), and become Strings only when read.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    private var entries: [(String, String)]
    /// Request headers as received, before `entries`; folded into `entries` by the first mutation.
    private var block = HeaderBlock()

    /// Headers read from a connection, kept as bytes.
    init(block: HeaderBlock) {
        self.entries = []
        self.block = block
    }

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
        if let value = block.first(name) { return value }
        for (key, value) in entries where Self.namesEqual(key, name) { return value }
        return nil
    }

    /// Every value of the header `name`, in order.
    public func values(for name: String) -> [String] {
        block.all(name) + entries.filter { Self.namesEqual($0.0, name) }.map(\.1)
    }

    /// How many entries are named `name`, without building their values.
    func occurrences(of name: String) -> Int {
        block.occurrences(of: name) + entries.reduce(0) { $0 + (Self.namesEqual($1.0, name) ? 1 : 0) }
    }

    /// True when both lists hold the same entries in the same order (names compared exactly).
    func sameEntries(as other: HTTPHeaders) -> Bool {
        guard count == other.count else { return false }
        if block.count == 0 && other.block.count == 0 {
            return zip(entries, other.entries).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        }
        return zip(self, other).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// Appends an entry; earlier entries with the same name stay.
    public mutating func add(_ name: String, _ value: String) {
        unfold()
        entries.append((name, value))
    }

    /// Replaces every entry named `name` with one entry holding `value`.
    public mutating func replaceOrAdd(_ name: String, _ value: String) {
        unfold()
        remove(name)
        entries.append((name, value))
    }

    /// Removes every entry named `name`.
    public mutating func remove(_ name: String) {
        unfold()
        entries.removeAll { Self.namesEqual($0.0, name) }
    }

    /// True when at least one entry is named `name`.
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// The number of entries.
    public var count: Int { block.count + entries.count }

    /// Iterates `(name, value)` pairs in order.
    public func makeIterator() -> IndexingIterator<[(String, String)]> {
        guard block.count > 0 else { return entries.makeIterator() }
        return (block.pairs() + entries).makeIterator()
    }

    /// Moves the byte block's headers into `entries`, before a change.
    private mutating func unfold() {
        guard block.count > 0 else { return }
        entries = block.pairs() + entries
        block = HeaderBlock()
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

    static func lowerASCII(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }
}

/// Header fields in one byte array, as libmicrohttpd hands them over: per field a 2-byte name length, a 2-byte value
/// length (little endian), then the name's and the value's bytes. One allocation per request; names are compared
/// case-insensitively on the bytes, and a value becomes a String only when asked for.
struct HeaderBlock: Sendable {
    private(set) var bytes: [UInt8] = []
    private(set) var count = 0

    init() {}

    /// Appends a field; false (and nothing appended) when a part is longer than 65,535 bytes.
    mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard name.count <= 0xFFFF, value.count <= 0xFFFF else { return false }
        if bytes.isEmpty { bytes.reserveCapacity(512) }
        bytes.append(UInt8(name.count & 0xFF))
        bytes.append(UInt8(name.count >> 8))
        bytes.append(UInt8(value.count & 0xFF))
        bytes.append(UInt8(value.count >> 8))
        bytes.append(contentsOf: name)
        bytes.append(contentsOf: value)
        count += 1
        return true
    }

    /// Calls `body` with (name range, value range) of each field in order until it returns false.
    private func forEach(_ body: (Range<Int>, Range<Int>) -> Bool) {
        var index = 0
        while index + 4 <= bytes.count {
            let nameLength = Int(bytes[index]) | Int(bytes[index + 1]) << 8
            let valueLength = Int(bytes[index + 2]) | Int(bytes[index + 3]) << 8
            let name = (index + 4)..<(index + 4 + nameLength)
            let value = name.upperBound..<(name.upperBound + valueLength)
            guard body(name, value) else { return }
            index = value.upperBound
        }
    }

    private func nameEquals(_ range: Range<Int>, _ name: String) -> Bool {
        guard range.count == name.utf8.count else { return false }
        var name = name  // withUTF8 may make a bridged string native; header names in code are literals already
        return name.withUTF8 { other in
            bytes.withUnsafeBufferPointer { mine in
                for offset in 0..<other.count
                where HTTPHeaders.lowerASCII(mine[range.lowerBound + offset]) != HTTPHeaders.lowerASCII(other[offset]) {
                    return false
                }
                return true
            }
        }
    }

    private func text(_ range: Range<Int>) -> String {
        bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }

    func first(_ name: String) -> String? {
        guard count > 0 else { return nil }
        var found: String?
        forEach { key, value in
            guard nameEquals(key, name) else { return true }
            found = text(value)
            return false
        }
        return found
    }

    func occurrences(of name: String) -> Int {
        var found = 0
        forEach { key, _ in
            if nameEquals(key, name) { found += 1 }
            return true
        }
        return found
    }

    func all(_ name: String) -> [String] {
        guard count > 0 else { return [] }
        var found: [String] = []
        forEach { key, value in
            if nameEquals(key, name) { found.append(text(value)) }
            return true
        }
        return found
    }

    func pairs() -> [(String, String)] {
        var result: [(String, String)] = []
        result.reserveCapacity(count)
        forEach { key, value in
            result.append((text(key), text(value)))
            return true
        }
        return result
    }
}
