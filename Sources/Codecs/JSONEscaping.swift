// JSON string escaping, the one copy the production modules use (the fake Salesforce keeps its own on purpose).
//
// Rules, and why:
// - RFC 8259 §7 requires `"`, `\` and U+0000...U+001F to be escaped. They are written `\"`, `\\`, the short
//   forms `\b \f \n \r \t`, and `\u00XX` (lowercase hex) for the other control characters.
// - U+007F (DEL) and U+2028/U+2029 (line and paragraph separators) are escaped too, as `\u007f`, `\u2028` and
//   `\u2029`. RFC 8259 allows escaping any character; these three break log viewers, terminals and JavaScript
//   before ES2019 when written raw. `/` is not escaped (nothing requires it) and other non-ASCII text is written
//   as its UTF-8 bytes.
// - The two old copies differed: HTTPServer's `JSONBody.escape` did all of the above; TokenGatewayCore's
//   `JSONWriter` wrote `\b` and `\f` as `\u0008` and `\u000c` and left DEL, U+2028 and U+2029 raw. Both outputs
//   parse to the same strings; the HTTPServer rules are kept because they are the safer superset.

/// Escaping of text for JSON string literals (RFC 8259).
public enum JSONEscaping {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `string` to `bytes` as a quoted JSON string.
    public static func appendQuoted(_ string: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        appendEscaped(string, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends `string` to `bytes` escaped for use between the quotes of a JSON string.
    public static func appendEscaped(_ string: String, to bytes: inout [UInt8]) {
        var string = string
        string.withUTF8 { appendEscaped(utf8: $0, to: &bytes) }
    }

    /// `string` escaped for use between the quotes of a JSON string.
    public static func escape(_ string: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count + 8)
        appendEscaped(string, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `string` as a quoted JSON string.
    public static func quote(_ string: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count + 10)
        appendQuoted(string, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// True for a byte that may start something to escape (0xE2 starts U+2028 and U+2029, and other characters).
    @inline(__always)
    private static func mayNeedEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == 0x7F || byte == 0xE2
    }

    private static func appendEscaped(utf8 buffer: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) {
        // Fast path: most strings (ids, tokens, URLs) need no escaping and are copied in one go.
        guard buffer.contains(where: mayNeedEscape) else {
            bytes.append(contentsOf: buffer)
            return
        }
        var index = 0
        while index < buffer.count {
            let byte = buffer[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20, 0x7F:
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
            case 0xE2 where index + 1 < buffer.count && buffer[index] == 0x80
                && (buffer[index + 1] == 0xA8 || buffer[index + 1] == 0xA9):
                bytes.append(contentsOf: Array(buffer[index + 1] == 0xA8 ? #"\u2028"#.utf8 : #"\u2029"#.utf8))
                index += 2
            default: bytes.append(byte)
            }
        }
    }
}
