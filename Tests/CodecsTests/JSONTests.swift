import Codecs
import Testing

@Suite struct JSONTests {
    @Test func parsesNestedValuesWithEscapesAndUnicode() throws {
        let text = #"{"a":[1,-2.5e3,true,false,null],"s":"q\"\\\/\n\u00e9\ud83d\ude00","o":{}}"#
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value["a"] == .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        #expect(value["s"] == .string("q\"\\/\né😀"))
        #expect(value["o"] == .object([:]))
    }

    @Test(arguments: [
        "", "{", "{\"a\":}", "[1,]", "{\"a\":1,}", "01", "\"\u{01}\"", "tru", "{} x", "\"\\ud800\"", "1.", "-",
        String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
    ])
    func rejectsMalformedDocuments(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func writerEscapesControlCharactersAndQuotes() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("k", "a\"b\\c\nd\u{01}")
        writer.field("n", nil as String?)
        writer.field("i", 42)
        writer.field("b", true)
        writer.field("list", ["x", "y"])
        writer.endObject()
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == #"{"k":"a\"b\\c\nd\u0001","n":null,"i":42,"b":true,"list":["x","y"]}"#)
        let back = try JSONValue.parse(writer.bytes)
        #expect(back["k"] == .string("a\"b\\c\nd\u{01}"))
    }
}
