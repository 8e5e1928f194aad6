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
