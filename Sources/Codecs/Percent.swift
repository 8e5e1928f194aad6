// Percent-encoding and `application/x-www-form-urlencoded`, the one copy the production modules use (the fake
// Salesforce keeps its own on purpose, so that one bug cannot hide on both sides).
//
// Rules, and why:
// - Encoding keeps exactly the bytes of the given set, by default RFC 3986 §2.3's unreserved characters
//   (`A-Z a-z 0-9 - . _ ~`), and writes every other UTF-8 byte as `%XX` with uppercase digits (RFC 3986 §2.1).
//   The old copies (HTTPClientRequest.percentEncode and GatewayAPI.formEscape) agreed on this.
// - Form encoding is that same encoding of each name and value, joined as `name=value&...`. A space becomes
//   `%20`, not WHATWG's `+`, and `~` is kept: text built this way is valid in a URL query as well as a form body,
//   and the WHATWG urlencoded parser (and Salesforce's servlet) decodes it to the same fields.
// - Decoding follows the WHATWG URL Standard's percent-decode: `%` followed by two hex digits (either case)
//   becomes that byte; any other `%` stays as it is (never an error: a malformed escape in a path or a query is
//   kept literally, as the server, AuthorizationCode and the client's redaction all did). The decoded bytes
//   are read as UTF-8, an invalid sequence becoming U+FFFD. `+` is a space only in form decoding (WHATWG
//   urlencoded parser), never in a path segment or a plain decode: an authorization code's `+` stays a `+`.
// - Form pairs: split on `&`, empty pieces skipped, the first `=` separates name from value (a piece without one
//   is a name with an empty value), names and values form-decoded: the WHATWG urlencoded parser.
//   The client's old redaction decoder parsed escapes with `UInt8(_:radix:)`, which also took `%+1` and `%-0`
//   as escapes; that is gone.

/// A set of bytes that percent-encoding keeps as they are.
public struct PercentEncodingSet: Sendable, Hashable {
    // One bit per byte value 0...255.
    @usableFromInline let words: (UInt64, UInt64, UInt64, UInt64)

    /// RFC 3986 §2.3's unreserved characters: `A-Z a-z 0-9 - . _ ~`.
    public static let unreserved = PercentEncodingSet(keeping: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    /// A set that keeps the given bytes.
    public init(keeping bytes: some Sequence<UInt8>) {
        var words: [UInt64] = [0, 0, 0, 0]
        for byte in bytes { words[Int(byte >> 6)] |= 1 << UInt64(byte & 63) }
        self.words = (words[0], words[1], words[2], words[3])
    }

    /// The set with the bytes of `other` added.
    public func union(_ other: PercentEncodingSet) -> PercentEncodingSet {
        PercentEncodingSet(words: (words.0 | other.words.0, words.1 | other.words.1, words.2 | other.words.2,
            words.3 | other.words.3))
    }

    private init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// True when `byte` is kept as it is.
    @inlinable
    public func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    /// Compares the bit tables.
    public static func == (lhs: PercentEncodingSet, rhs: PercentEncodingSet) -> Bool {
        lhs.words == rhs.words
    }

    /// Hashes the bit table.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

/// Percent-encoding (RFC 3986) and `application/x-www-form-urlencoded` bodies and queries (WHATWG).
public enum Percent {
    /// `text` with every UTF-8 byte outside `keeping` written as `%XX` (uppercase hex).
    public static func encode(_ text: some StringProtocol, keeping: PercentEncodingSet = .unreserved) -> String {
        let utf8 = text.utf8
        if utf8.allSatisfy({ keeping.contains($0) }) { return String(text) }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count * 3)
        for byte in utf8 {
            if keeping.contains(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(Hex.uppercaseDigit(byte >> 4))
                out.append(Hex.uppercaseDigit(byte))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Fields as a form body or query: `name=value` pairs joined by `&`, each name and value encoded by
    /// `encode(_:keeping:)` with the unreserved set (a space becomes `%20`, `+` becomes `%2B`).
    public static func formEncode(_ fields: [(String, String)]) -> String {
        var out = ""
        for (index, field) in fields.enumerated() {
            if index > 0 { out += "&" }
            out += encode(field.0)
            out += "="
            out += encode(field.1)
        }
        return out
    }

    /// Decodes `%XX` escapes once; a `%` not followed by two hex digits stays, and `+` stays a `+`.
    public static func decode(_ text: some StringProtocol) -> String {
        decodeText(text, plusAsSpace: false)
    }

    /// Decodes one form name or value: `+` is a space, then `%XX` escapes are decoded as by `decode(_:)`.
    public static func formDecode(_ text: some StringProtocol) -> String {
        decodeText(text, plusAsSpace: true)
    }

    /// Decodes `%XX` escapes in raw bytes (and `+` as a space when `plusAsSpace`); invalid UTF-8 becomes U+FFFD.
    public static func decode(bytes: some Collection<UInt8>, plusAsSpace: Bool) -> String {
        if let decoded = bytes.withContiguousStorageIfAvailable({ decode(buffer: $0, plusAsSpace: plusAsSpace) }) {
            return decoded
        }
        return Array(bytes).withUnsafeBufferPointer { decode(buffer: $0, plusAsSpace: plusAsSpace) }
    }

    /// Splits form text (a body or a query without `?`) into decoded `(name, value)` pairs in order: empty pieces
    /// are skipped, the first `=` ends the name, and a piece without `=` is a name with an empty value.
    public static func formPairs(_ text: some StringProtocol) -> [(String, String)] {
        var result: [(String, String)] = []
        let utf8 = text.utf8
        for piece in utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let equals = piece.firstIndex(of: UInt8(ascii: "=")) {
                let name = decode(bytes: piece[piece.startIndex..<equals], plusAsSpace: true)
                let value = decode(bytes: piece[piece.index(after: equals)...], plusAsSpace: true)
                result.append((name, value))
            } else {
                result.append((decode(bytes: piece, plusAsSpace: true), ""))
            }
        }
        return result
    }

    private static func decodeText(_ text: some StringProtocol, plusAsSpace: Bool) -> String {
        let utf8 = text.utf8
        let needsWork = utf8.contains { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }
        guard needsWork else { return String(text) }
        return decode(bytes: utf8, plusAsSpace: plusAsSpace)
    }

    private static func decode(buffer: UnsafeBufferPointer<UInt8>, plusAsSpace: Bool) -> String {
        String(unsafeUninitializedCapacity: buffer.count) { output in
            var written = 0
            var index = 0
            let count = buffer.count
            while index < count {
                let byte = buffer[index]
                if byte == UInt8(ascii: "%"), index + 2 < count, let high = Hex.value(of: buffer[index + 1]),
                    let low = Hex.value(of: buffer[index + 2])
                {
                    output[written] = high << 4 | low
                    index += 3
                } else {
                    output[written] = byte == UInt8(ascii: "+") && plusAsSpace ? UInt8(ascii: " ") : byte
                    index += 1
                }
                written += 1
            }
            return written
        }
    }
}
