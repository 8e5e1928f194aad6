import Codecs

/// A fast reader for the small bodies of the hot path, such as `{"client":"crm","connection":"c1"}`: one flat
/// object whose values are plain strings (printable ASCII, no escapes), `true`, `false` or `null`. Anything else
/// (numbers, nesting, escapes, non-ASCII, a repeated name, a syntax error) returns nil and the generic parser
/// decides, so answers and error messages stay exactly the generic parser's.
enum FlatJSONObject {
    static func members(_ body: [UInt8]) -> [String: JSONValue]? {
        body.withUnsafeBufferPointer { bytes -> [String: JSONValue]? in
            var cursor = Cursor(bytes: bytes)
            var members: [String: JSONValue] = [:]
            let read = cursor.object { cursor, name in
                let value: JSONValue?
                switch cursor.peek() {
                case UInt8(ascii: "\""):
                    value = cursor.quoted { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }.map {
                        .string(cursor.string($0))
                    }
                case UInt8(ascii: "t"): value = cursor.literal("true", .bool(true))
                case UInt8(ascii: "f"): value = cursor.literal("false", .bool(false))
                case UInt8(ascii: "n"): value = cursor.literal("null", .null)
                default: value = nil
                }
                guard let value else { return false }
                return members.updateValue(value, forKey: cursor.string(name)) == nil
            }
            return read ? members : nil
        }
    }

    /// The ids of the usual `POST /token` body, `{"client":"crm"}` or `{"client":"crm","connection":"c1"}` (in
    /// either order, any JSON whitespace): `client` required, `connection` optional, each a valid resource id
    /// (`ResourceID`). Anything else returns nil, so the generic path answers it with its own errors.
    static func tokenIDs(_ body: [UInt8]) -> (client: String, connection: String?)? {
        body.withUnsafeBufferPointer { bytes -> (client: String, connection: String?)? in
            var cursor = Cursor(bytes: bytes)
            var client: String?
            var connection: String?
            let read = cursor.object { cursor, name in
                // 1 to 63 of [a-z0-9_-], the first a letter or digit.
                guard
                    let range = cursor.quoted({
                        (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F || $0 == 0x2D
                    }), (1...63).contains(range.count), bytes[range.lowerBound] != 0x5F,
                    bytes[range.lowerBound] != 0x2D
                else { return false }
                if cursor.equals(name, "client"), client == nil {
                    client = cursor.string(range)
                } else if cursor.equals(name, "connection"), connection == nil {
                    connection = cursor.string(range)
                } else {
                    return false
                }
                return true
            }
            guard read, let client else { return nil }
            return (client, connection)
        }
    }

    /// A position in the body's bytes.
    struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D
                || bytes[index] == 0x09
            {
                index += 1
            }
        }

        /// The next byte after any whitespace (0 at the end).
        mutating func peek() -> UInt8 {
            skipSpace()
            return index < bytes.count ? bytes[index] : 0
        }

        mutating func expect(_ byte: UInt8) -> Bool {
            guard peek() == byte, index < bytes.count else { return false }
            index += 1
            return true
        }

        /// A quoted run of bytes that each pass `allowed`; its range, without the quotes.
        mutating func quoted(_ allowed: (UInt8) -> Bool) -> Range<Int>? {
            guard expect(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return start..<(index - 1)
                }
                guard allowed(byte) else { return nil }
                index += 1
            }
            return nil
        }

        func string(_ range: Range<Int>) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }

        func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
            guard range.count == text.utf8CodeUnitCount else { return false }
            for offset in 0..<range.count where bytes[range.lowerBound + offset] != text.utf8Start[offset] {
                return false
            }
            return true
        }

        mutating func literal(_ text: StaticString, _ value: JSONValue) -> JSONValue? {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count else { return nil }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return nil }
            index += count
            return value
        }

        /// Reads one whole body that is a flat object: for each member, `member` gets the cursor at its value and
        /// the name's range (printable ASCII, no escapes), reads the value and says whether to go on. True when the
        /// object was read to its end with nothing after it.
        mutating func object(_ member: (inout Cursor, Range<Int>) -> Bool) -> Bool {
            guard expect(UInt8(ascii: "{")) else { return false }
            if !expect(UInt8(ascii: "}")) {
                while true {
                    guard let name = quoted({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }),
                        expect(UInt8(ascii: ":")), member(&self, name)
                    else { return false }
                    if expect(UInt8(ascii: ",")) { continue }
                    guard expect(UInt8(ascii: "}")) else { return false }
                    break
                }
            }
            skipSpace()
            return index == bytes.count
        }
    }
}
