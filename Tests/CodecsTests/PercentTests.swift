import Codecs
import Testing

@Suite struct PercentTests {
    @Test func encodingKeepsUnreservedAndEscapesEverythingElseInUppercase() {
        #expect(Percent.encode("AZaz09-._~") == "AZaz09-._~")
        #expect(Percent.encode("a b+c") == "a%20b%2Bc")
        #expect(Percent.encode("/?#[]@!$&'()*+,;=%") == "%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25")
        #expect(Percent.encode("é✓🎉") == "%C3%A9%E2%9C%93%F0%9F%8E%89")
        #expect(Percent.encode("\u{0}\n\u{7F}") == "%00%0A%7F")
        #expect(Percent.encode("") == "")
    }

    @Test func encodingKeepsTheBytesOfTheGivenSet() {
        let path = PercentEncodingSet.unreserved.union(PercentEncodingSet(keeping: "/:".utf8))
        #expect(Percent.encode("/a b/c:d?", keeping: path) == "/a%20b/c:d%3F")
        #expect(path.contains(UInt8(ascii: "/")))
        #expect(!PercentEncodingSet.unreserved.contains(UInt8(ascii: "/")))
        #expect(!PercentEncodingSet.unreserved.contains(0xFF))
        #expect(Percent.encode("xyz", keeping: PercentEncodingSet(keeping: [])) == "%78%79%7A")
    }

    // The rule of the old HTTPClientRequest.formEncode and GatewayAPI.formEscape: space as %20, '+' as %2B.
    @Test func formEncodingWritesPairsOfEncodedNamesAndValues() {
        #expect(
            Percent.formEncode([("a", "1+2=3&4%5"), ("b c", "é.~-_Zz09")]) == "a=1%2B2%3D3%264%255&b%20c=%C3%A9.~-_Zz09")
        #expect(Percent.formEncode([]) == "")
        #expect(Percent.formEncode([("k", "")]) == "k=")
        #expect(Percent.formEncode([("", "v"), ("k", "w")]) == "=v&k=w")
    }

    @Test func decodingTurnsEscapesIntoBytesInEitherCase() {
        #expect(Percent.decode("%41%42") == "AB")
        #expect(Percent.decode("%2f%2F") == "//")
        #expect(Percent.decode("%C3%A9%E2%9C%93%F0%9F%8E%89") == "é✓🎉")
        #expect(Percent.decode("") == "")
        #expect(Percent.decode("plain") == "plain")
        #expect(Percent.decode("%00") == "\u{0}")
    }

    // The rule of the old server FormDecoding, AuthorizationCode.percentDecode and the client's redaction decoder.
    @Test func malformedEscapesAreKeptLiterally() {
        #expect(Percent.decode("a%ZZb%4") == "a%ZZb%4")
        #expect(Percent.decode("%") == "%")
        #expect(Percent.decode("%%41") == "%A")
        #expect(Percent.decode("%4%41") == "%4A")
        #expect(Percent.decode("100%") == "100%")
        #expect(Percent.decode("%G1%1G") == "%G1%1G")
    }

    // The client's old decoder parsed with UInt8(_:radix:), which also accepted a sign: "%+1" became 0x01.
    @Test func signedDigitsAreNotAnEscape() {
        #expect(Percent.decode("%+1%-0") == "%+1%-0")
        #expect(Percent.formDecode("%+1") == "% 1")
    }

    @Test func decodingDoesNotDecodeTwice() {
        #expect(Percent.decode("abc%253D") == "abc%3D")
    }

    @Test func invalidUTF8BecomesTheReplacementCharacter() {
        #expect(Percent.decode("a%FFb") == "a\u{FFFD}b")
        #expect(Percent.decode("%C3") == "\u{FFFD}")
        #expect(Percent.decode(bytes: [0x25, 0x43, 0x33, 0x25, 0x41, 0x39], plusAsSpace: false) == "é")
    }

    @Test func plusIsASpaceOnlyInFormDecoding() {
        #expect(Percent.decode("a+b%2B") == "a+b+")
        #expect(Percent.formDecode("a+b%2B") == "a b+")
        #expect(Percent.formDecode("end-user+denied+authorization") == "end-user denied authorization")
        #expect(Percent.decode(bytes: Array("a+b".utf8), plusAsSpace: true) == "a b")
        #expect(Percent.decode(bytes: Array("a+b".utf8)[...], plusAsSpace: false) == "a+b")
    }

    @Test func decodingWorksOnSubstrings() {
        let text = "xx/a%20b/yy"
        let middle = text.split(separator: "/")[1]
        #expect(Percent.decode(middle) == "a b")
    }

    // The rule of the old server FormDecoding.pairs (WHATWG urlencoded parser).
    @Test func formPairsSplitOnAmpersandAndTheFirstEquals() {
        let pairs = Percent.formPairs("a=1&b=hello+world&c=%E2%9C%93&d&e=x%3Dy=z&&f=%zz%4&g=%2B&=v&h%20i=j+k")
        #expect(pairs.map { $0.0 } == ["a", "b", "c", "d", "e", "f", "g", "", "h i"])
        #expect(pairs.map { $0.1 } == ["1", "hello world", "✓", "", "x=y=z", "%zz%4", "+", "v", "j k"])
        #expect(Percent.formPairs("").isEmpty)
        #expect(Percent.formPairs("&&&").isEmpty)
    }

    @Test(arguments: ["", "a", "a b+c", "é✓🎉", "%41", "\u{0}\u{1F}\u{7F}", "/?#&=", String(repeating: "x~", count: 500)])
    func encodeThenDecodeGivesBackTheText(_ text: String) {
        #expect(Percent.decode(Percent.encode(text)) == text)
        #expect(Percent.formDecode(Percent.encode(text)) == text)
        let pairs = Percent.formPairs(Percent.formEncode([(text, text), ("k", text)]))
        #expect(pairs.count == 2)
        #expect(pairs.last?.1 == text)
        if !text.isEmpty { #expect(pairs.first?.0 == text) }
    }
}
