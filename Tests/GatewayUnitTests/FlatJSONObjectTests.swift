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

    @Test func theTokenReaderTakesOnlyTheUsualBodyAndAgreesWithTheGenericChecks() throws {
        let read: [(String, String, String?)] = [
            (#"{"client":"crm"}"#, "crm", nil), (#" { "connection" : "c-1_x" , "client":"a9" } "#, "a9", "c-1_x"),
            ("{\n\t\"client\":\"crm\",\"connection\":\"default\"}", "crm", "default"),
        ]
        for (text, client, connection) in read {
            let ids = try #require(FlatJSONObject.tokenIDs(Array(text.utf8)), "\(text)")
            #expect(ids.client == client && ids.connection == connection, "\(text)")
            // What the generic path reads from the same body.
            let body = try RequestBody.parse(Array(text.utf8), contentType: "application/json", tooLarge: false, maxBytes: 65536)
            #expect(try body.id("client") == client && body.id("connection", default: "default") == connection ?? "default")
        }
        // Left to the generic path (and its errors): other fields, invalid ids, escapes, repeats, other types.
        let declined: [String] = [
            "{}", #"{"connection":"c1"}"#, #"{"client":"crm","force_refresh":true}"#, #"{"client":"Crm"}"#,
            #"{"client":"_crm"}"#, #"{"client":"-crm"}"#, #"{"client":""}"#, #"{"client":"cr\u006d"}"#,
            #"{"cli\u0065nt":"crm"}"#, #"{"client":"crm","client":"crm"}"#, #"{"client":null}"#, #"{"client":1}"#,
            #"{"client":"crm",}"#, #"{"client":"crm"} x"#, #"{"client":"crm""#, "{\"client\":\"" + String(repeating: "a", count: 64) + "\"}",
            "", "[]",
        ]
        for text in declined { #expect(FlatJSONObject.tokenIDs(Array(text.utf8)) == nil, "\(text)") }
        let usual = Array(#"{"client":"crm"}"#.utf8)
        #expect(RequestBody.tokenIDs(usual, contentType: "application/json; charset=utf-8", tooLarge: false) != nil)
        #expect(RequestBody.tokenIDs(usual, contentType: "text/plain", tooLarge: false) == nil)
        #expect(RequestBody.tokenIDs(usual, contentType: nil, tooLarge: false) == nil)
        #expect(RequestBody.tokenIDs(usual, contentType: "application/json", tooLarge: true) == nil)
    }
}
