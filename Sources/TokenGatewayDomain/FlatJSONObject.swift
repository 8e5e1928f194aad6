import Codecs

/// A fast reader for the small bodies of the hot path, such as `{"client":"crm","connection":"c1"}`: one flat
/// object whose values are plain strings (printable ASCII, no escapes), `true`, `false` or `null`. Anything else
/// (numbers, nesting, escapes, non-ASCII, a repeated name, a syntax error) returns nil and the generic parser
/// decides, so answers and error messages stay exactly the generic parser's.
enum FlatJSONObject {
    static func members(_ body: [UInt8]) -> [String: JSONValue]? {
        body.withUnsafeBufferPointer { bytes -> [String: JSONValue]? in
            var index = 0
            func skipSpace() {
                while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D
                    || bytes[index] == 0x09
                {
                    index += 1
                }
            }
            func expect(_ byte: UInt8) -> Bool {
                skipSpace()
                guard index < bytes.count, bytes[index] == byte else { return false }
                index += 1
                return true
            }
            func string() -> String? {
                guard expect(UInt8(ascii: "\"")) else { return nil }
                let start = index
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "\"") {
                        index += 1
                        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<(index - 1)]), as: UTF8.self)
                    }
                    guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                    index += 1
                }
                return nil
            }
            func literal(_ text: StaticString, _ value: JSONValue) -> JSONValue? {
                let count = text.utf8CodeUnitCount
                guard index + count <= bytes.count else { return nil }
                for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return nil }
                index += count
                return value
            }
            guard expect(UInt8(ascii: "{")) else { return nil }
            var members: [String: JSONValue] = [:]
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    guard let name = string(), expect(UInt8(ascii: ":")) else { return nil }
                    skipSpace()
                    guard index < bytes.count else { return nil }
                    let value: JSONValue?
                    switch bytes[index] {
                    case UInt8(ascii: "\""): value = string().map(JSONValue.string)
                    case UInt8(ascii: "t"): value = literal("true", .bool(true))
                    case UInt8(ascii: "f"): value = literal("false", .bool(false))
                    case UInt8(ascii: "n"): value = literal("null", .null)
                    default: value = nil
                    }
                    guard let value, members.updateValue(value, forKey: name) == nil else { return nil }
                    skipSpace()
                    guard index < bytes.count else { return nil }
                    if bytes[index] == UInt8(ascii: ",") {
                        index += 1
                        continue
                    }
                    guard bytes[index] == UInt8(ascii: "}") else { return nil }
                    index += 1
                    break
                }
            }
            skipSpace()
            return index == bytes.count ? members : nil
        }
    }
}

extension FlatJSONObject {
    /// The ids of the usual `POST /token` body, `{"client":"crm"}` or `{"client":"crm","connection":"c1"}` (in
    /// either order, any JSON whitespace): `client` required, `connection` optional, each a valid resource id
    /// (`ResourceID`). Anything else returns nil, so the generic path answers it with its own errors.
    static func tokenIDs(_ body: [UInt8]) -> (client: String, connection: String?)? {
        body.withUnsafeBufferPointer { bytes -> (client: String, connection: String?)? in
            var index = 0
            func skipSpace() {
                while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D
                    || bytes[index] == 0x09
                {
                    index += 1
                }
            }
            /// A quoted run of id bytes (`[a-z0-9_-]`); its range, without the quotes.
            func quoted() -> Range<Int>? {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
                index += 1
                let start = index
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "\"") {
                        index += 1
                        return start..<(index - 1)
                    }
                    guard (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x5F || byte == 0x2D
                    else { return nil }
                    index += 1
                }
                return nil
            }
            func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
                guard range.count == text.utf8CodeUnitCount else { return false }
                for offset in 0..<range.count where bytes[range.lowerBound + offset] != text.utf8Start[offset] {
                    return false
                }
                return true
            }
            func id(_ range: Range<Int>) -> String? {
                // 1 to 63 bytes, the first a letter or digit (the rest were checked while reading).
                guard (1...63).contains(range.count), bytes[range.lowerBound] != 0x5F, bytes[range.lowerBound] != 0x2D
                else { return nil }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            }
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
            index += 1
            var client: String?
            var connection: String?
            while true {
                guard let name = quoted() else { return nil }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let value = quoted().flatMap(id) else { return nil }
                if equals(name, "client"), client == nil {
                    client = value
                } else if equals(name, "connection"), connection == nil {
                    connection = value
                } else {
                    return nil
                }
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { return nil }
                index += 1
                break
            }
            skipSpace()
            guard index == bytes.count, let client else { return nil }
            return (client, connection)
        }
    }
}
