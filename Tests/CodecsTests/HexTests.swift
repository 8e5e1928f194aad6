import Codecs
import Testing

@Suite struct HexTests {
    // The rule of the old String(format: "%02x") copies: lowercase, two digits per byte.
    @Test func encodingIsLowercaseTwoDigitsPerByte() {
        #expect(Hex.encode([0x00, 0x0A, 0xFF, 0x7F]) == "000aff7f")
        #expect(Hex.encode([]) == "")
        #expect(Hex.encode((0...255).map { UInt8($0) }).count == 512)
    }

    // The rule of the old KeyRegistry.bytes(hex:): either case, nil for odd length or a non-hex digit.
    @Test func decodingAcceptsEitherCaseAndRejectsAnythingElse() {
        #expect(Hex.decode("000aFF7f") == [0x00, 0x0A, 0xFF, 0x7F])
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("0g") == nil)
        #expect(Hex.decode("+1") == nil)
        #expect(Hex.decode(" 1") == nil)
        #expect(Hex.decode("é1") == nil)
    }

    @Test func digitValues() {
        #expect(Hex.value(of: UInt8(ascii: "0")) == 0)
        #expect(Hex.value(of: UInt8(ascii: "9")) == 9)
        #expect(Hex.value(of: UInt8(ascii: "a")) == 10)
        #expect(Hex.value(of: UInt8(ascii: "F")) == 15)
        for byte in [UInt8(ascii: "g"), UInt8(ascii: "G"), UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "@"), 0, 0xFF] {
            #expect(Hex.value(of: byte) == nil)
        }
        #expect(Hex.lowercaseDigit(0xAB) == UInt8(ascii: "b"))
        #expect(Hex.uppercaseDigit(0x0C) == UInt8(ascii: "C"))
    }

    @Test func roundTripOfEveryByte() {
        let bytes = (0...255).map { UInt8($0) }
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.decode(Hex.encode(bytes).uppercased()) == bytes)
    }
}
