import Codecs
import Testing

@testable import TokenGatewayDomain

@Suite struct FlatJSONObjectTests {
    @Test func theFastReaderAgreesWithTheGenericParserOrStepsAside() throws {
        let read: [String] = [
            #"{"client":"crm"}"#, #" { "client" : "crm" , "connection":"c1" } "#, "{}", "{\n\t\"a\":true,\"b\":false,\"c\":null}",
        ]
        for text in read {
            let members = try #require(FlatJSONObject.members(Array(text.utf8)), "\(text)")
            #expect(JSONValue.object(members) == (try JSONValue.parse(Array(text.utf8))), "\(text)")
        }
        // Left to the generic parser: numbers, escapes, non-ASCII, nesting, repeated names, anything malformed.
        let declined: [String] = [
            #"{"min_ttl_seconds":60}"#, #"{"a":"x\"y"}"#, #"{"a":"\u0000"}"#, "{\"a\":\"é\"}", #"{"a":{}}"#,
            #"{"a":[]}"#, #"{"a":"x","a":"y"}"#, #"{"a":"x",}"#, #"{"a" "x"}"#, #"{"a":"x"} x"#, "[]", "", "{",
            #"{"a":tru}"#, #"{"a":"x""#,
        ]
        for text in declined { #expect(FlatJSONObject.members(Array(text.utf8)) == nil, "\(text)") }
    }
}
