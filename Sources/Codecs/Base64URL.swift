// base64url, the one copy the production modules use (the fake Salesforce keeps its own on purpose).
//
// Rules, and why:
// - The alphabet of RFC 4648 §5 (`A-Z a-z 0-9 - _`) without `=` padding, as JWS (RFC 7515 §2) and PKCE
//   (RFC 7636 §4.2) require; API keys use it for their 43-character secret. The old copy
//   (JWTAssertion.base64URL) went through Foundation's base64 and replaced `+`, `/` and `=`: same output.
// - Decoding is strict: only the base64url alphabet, no padding, no whitespace, a length that is not 1 modulo
//   4, and zero unused low bits in the last character (RFC 4648 §3.5), so every byte string has exactly one
//   accepted spelling.

/// Unpadded base64url (RFC 4648 §5).
public enum Base64URL {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// `bytes` as unpadded base64url: 32 bytes become 43 characters.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = bytes.startIndex
        var remaining = bytes.count
        while remaining >= 3 {
            let b0 = bytes[index]
            index = bytes.index(after: index)
            let b1 = bytes[index]
            index = bytes.index(after: index)
            let b2 = bytes[index]
            index = bytes.index(after: index)
            let group = UInt32(b0) << 16 | UInt32(b1) << 8 | UInt32(b2)
            out.append(alphabet[Int(group >> 18 & 63)])
            out.append(alphabet[Int(group >> 12 & 63)])
            out.append(alphabet[Int(group >> 6 & 63)])
            out.append(alphabet[Int(group & 63)])
            remaining -= 3
        }
        if remaining == 2 {
            let b0 = bytes[index]
            let b1 = bytes[bytes.index(after: index)]
            let group = UInt32(b0) << 16 | UInt32(b1) << 8
            out.append(alphabet[Int(group >> 18 & 63)])
            out.append(alphabet[Int(group >> 12 & 63)])
            out.append(alphabet[Int(group >> 6 & 63)])
        } else if remaining == 1 {
            let group = UInt32(bytes[index]) << 16
            out.append(alphabet[Int(group >> 18 & 63)])
            out.append(alphabet[Int(group >> 12 & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of unpadded base64url `text`; nil for a character outside the alphabet (padding included), a
    /// length of 1 modulo 4, or non-zero unused bits in the last character.
    public static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count * 3 / 4)
        var group: UInt32 = 0
        var bits = 0
        for digit in digits {
            guard let value = value(of: digit) else { return nil }
            group = group << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: group >> UInt32(bits)))
                group &= (1 << UInt32(bits)) - 1
            }
        }
        guard group == 0 else { return nil }
        return out
    }

    private static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return digit - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return digit - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }
}
