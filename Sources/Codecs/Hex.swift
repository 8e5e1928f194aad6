// Hexadecimal digits, the one copy the production modules use (the fake keeps its own on purpose).
//
// Rules, and why:
// - Encoding writes lowercase digits, two per byte: the gateway's ids (`tgw_<id>_`, `wh_`, `evt_`) and the
//   SHA-256 key hashes in the database were always lowercase (`String(format: "%02x")`), and key ids are
//   checked as `[0-9a-f]{16}`.
// - Decoding accepts both cases (RFC 4648 §8 and RFC 3986 §2.1 treat them as equivalent) and rejects anything
//   else: an odd length or a non-hex digit gives nil, never a guess.

/// Hexadecimal encoding and decoding of bytes.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The value 0...15 of one ASCII hex digit (`0-9`, `a-f`, `A-F`), nil for any other byte.
    @inlinable
    public static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit &- UInt8(ascii: "A") &+ 10
        default: return nil
        }
    }

    /// The lowercase hex digit for a value 0...15 (only the low four bits are used).
    @inlinable
    public static func lowercaseDigit(_ value: UInt8) -> UInt8 {
        let nibble = value & 0x0F
        return nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ nibble &- 10
    }

    /// The uppercase hex digit for a value 0...15 (only the low four bits are used), as percent-encoding writes it.
    @inlinable
    public static func uppercaseDigit(_ value: UInt8) -> UInt8 {
        let nibble = value & 0x0F
        return nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "A") &+ nibble &- 10
    }

    /// `bytes` as lowercase hex, two digits per byte: `[0x0a, 0xff]` becomes `"0aff"`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes spelled by `text` (either case); nil when its length is odd or it holds a non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        decode(bytes: text.utf8)
    }

    /// The bytes spelled by the hex digits `digits` (either case); nil for an odd count or a non-hex byte.
    public static func decode(bytes digits: some Collection<UInt8>) -> [UInt8]? {
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index != digits.endIndex {
            let next = digits.index(after: index)
            guard let high = value(of: digits[index]), let low = value(of: digits[next]) else { return nil }
            out.append(high << 4 | low)
            index = digits.index(after: next)
        }
        return out
    }
}
