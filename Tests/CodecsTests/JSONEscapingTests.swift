import Codecs
import Testing

@Suite struct JSONEscapingTests {
    // The old HTTPServer JSONBody.escape and JSONWriter agreed on these.
    @Test func plainTextIsLeftAlone() {
        #expect(JSONEscaping.escape("plain text é 🎉 / < >") == "plain text é 🎉 / < >")
        #expect(JSONEscaping.escape("") == "")
        #expect(JSONEscaping.quote("x") == "\"x\"")
        #expect(JSONEscaping.quote("") == "\"\"")
    }

    @Test func quotesBackslashesAndControlCharactersAreEscaped() {
        #expect(JSONEscaping.escape("a\"b\\c\u{1}") == #"a\"b\\c\u0001"#)
        #expect(JSONEscaping.escape("\n\r\t") == #"\n\r\t"#)
        #expect(JSONEscaping.escape("\u{0}\u{1F}") == #"\u0000\u001f"#)
    }

    // Where the old copies differed: JSONWriter wrote \u0008 and \u000c and left DEL, U+2028 and U+2029 raw.
    @Test func backspaceAndFormFeedUseShortFormsAndSeparatorsAreEscaped() {
        #expect(JSONEscaping.escape("\u{8}\u{C}") == #"\b\f"#)
        #expect(JSONEscaping.escape("\u{7F}") == #"\u007f"#)
        #expect(JSONEscaping.escape("a\u{2028}b\u{2029}c") == #"a\u2028b\u2029c"#)
        // Other characters starting with the byte 0xE2 stay as they are.
        #expect(JSONEscaping.escape("✓\u{2027}\u{202A}\"") == "✓\u{2027}\u{202A}\\\"")
    }

    @Test func appendsToExistingBytes() {
        var bytes = Array("[".utf8)
        JSONEscaping.appendQuoted("a\"", to: &bytes)
        bytes.append(UInt8(ascii: ","))
        JSONEscaping.appendQuoted("b", to: &bytes)
        JSONEscaping.appendEscaped("\n", to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"["a\"","b"\n"#)
    }

    @Test func everyEscapeIsOneTheSpecAllows() {
        // Build every BMP-ASCII control plus the specials and check each escape is in RFC 8259's grammar.
        let text = String(String.UnicodeScalarView((0..<0x80).compactMap(Unicode.Scalar.init)))
        let escaped = JSONEscaping.escape(text)
        #expect(!escaped.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        var index = escaped.startIndex
        while let slash = escaped[index...].firstIndex(of: "\\") {
            let next = escaped[escaped.index(after: slash)]
            #expect("\"\\/bfnrtu".contains(next))
            index = escaped.index(slash, offsetBy: next == "u" ? 6 : 2)
        }
    }
}
