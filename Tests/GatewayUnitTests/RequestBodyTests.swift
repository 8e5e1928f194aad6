import HTTPServer
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct RequestBodyTests {
    func request(_ body: String, type: String? = "application/json", tooLarge: Bool = false) -> HTTPRequest {
        var headers = HTTPHeaders()
        if let type { headers.add("Content-Type", type) }
        var request = HTTPRequest(method: "POST", path: "/token", headers: headers, body: Array(body.utf8))
        request.bodyTooLarge = tooLarge
        return request
    }

    func code(_ request: HTTPRequest) -> (Int, String)? {
        do {
            _ = try RequestBody.parse(request, maxBytes: 10)
            return nil
        } catch {
            return (error.code.status, error.code.rawValue)
        }
    }

    @Test func aStringHoldingNULIsRefusedNamingItsField() {
        func message(_ body: String) -> String? {
            do {
                _ = try RequestBody.parse(request(body), maxBytes: 1000)
                return nil
            } catch {
                return error.code.status == 400 && error.code.rawValue == "invalid_request" ? error.message : "\(error)"
            }
        }
        #expect(message(#"{"id":"acme","name":"Acme\u0000Admin"}"#)?.hasPrefix("name: must not contain") == true)
        #expect(message(#"{"scopes":["api","x\u0000"],"a":"b"}"#)?.hasPrefix("scopes:") == true)
        #expect(message(#"{"client":{"deep":["\u0000"]}}"#)?.hasPrefix("client:") == true)
        #expect(message(#"{"na\u0000me":"x"}"#)?.hasPrefix("a member name:") == true)
        #expect(message(#"{"name":"Acme\u0001 \u00e9"}"#) == nil)  // other escapes are fine
    }

    @Test func checksSizeThenMediaTypeThenSyntax() {
        #expect(code(request("", tooLarge: true))! == (413, "payload_too_large"))
        #expect(code(request("{}", type: "text/plain"))! == (415, "unsupported_media_type"))
        #expect(code(request("{}", type: nil))! == (415, "unsupported_media_type"))
        #expect(code(request("{", type: "application/json; charset=utf-8"))! == (400, "invalid_request"))
        #expect(code(request(""))! == (400, "invalid_request"))
        #expect(code(request("[1]"))! == (400, "invalid_request"))
        #expect(code(request("{}", type: "Application/JSON; charset=UTF-8")) == nil)
    }
}
