import Codecs
import Testing

@Suite struct Base64URLTests {
    // RFC 4648 §10 test vectors, in the URL alphabet and without padding.
    @Test(arguments: [
        ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ])
    func rfc4648Vectors(_ plain: String, _ encoded: String) {
        #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        #expect(Base64URL.decode(encoded) == Array(plain.utf8))
    }

    // The rule of the old JWTAssertion.base64URL: '-' and '_' for '+' and '/', no '='.
    @Test func usesTheURLAlphabetWithoutPadding() {
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.encode([0xFF, 0xFF, 0xFE]) == "___-")
        #expect(Base64URL.encode(Array(#"{"alg":"RS256"}"#.utf8)) == "eyJhbGciOiJSUzI1NiJ9")
        #expect(Base64URL.encode([UInt8](repeating: 0, count: 32)).count == 43)
    }

    @Test func decodingIsStrict() {
        #expect(Base64URL.decode("Zg==") == nil)  // padding
        #expect(Base64URL.decode("Zm9v+w") == nil)  // standard alphabet
        #expect(Base64URL.decode("Zm9/") == nil)
        #expect(Base64URL.decode("Zm9 v") == nil)
        #expect(Base64URL.decode("Z") == nil)  // 1 modulo 4
        #expect(Base64URL.decode("Zh") == nil)  // unused bits set: "Zg" is the only spelling of "f"
        #expect(Base64URL.decode("Zm9") == nil)
    }

    @Test func roundTripOfEveryLengthUpTo64() {
        for length in 0...64 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
            let text = Base64URL.encode(bytes)
            #expect(text.utf8.allSatisfy { $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "/") })
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.encode(Array([9, 8, 7, 6][1...])) == Base64URL.encode([8, 7, 6]))
    }
}
