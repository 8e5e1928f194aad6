import Foundation
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct WebhookValidationTests {
    func body(_ json: String) throws -> RequestBody {
        guard case .object(let members) = try JSONValue.parse(Array(json.utf8)) else { throw GatewayError.unauthorized }
        return RequestBody(members: members)
    }

    func refusal(_ json: String, allowList: UpstreamAllowList? = nil) throws -> String? {
        do {
            _ = try WebhookValidation.create(body: try body(json), allowList: allowList)
            return nil
        } catch let error as GatewayError {
            #expect(error.code.rawValue == "invalid_request")
            return error.message
        }
    }

    @Test func withoutAnAllowListOnlyHTTPSOnADNSNameIsAccepted() throws {
        let ok = try WebhookValidation.create(
            body: try body(#"{"url":"https://ops.example.com/hooks/tgw?x=1"}"#), allowList: nil)
        #expect(ok.url == "https://ops.example.com/hooks/tgw?x=1")
        #expect(ok.events == WebhookEventType.allCases)
        for url in [
            "http://ops.example.com/h", "https://127.0.0.1/h", "https://[::1]/h", "https://localhost/h",
            "https://a.localhost/h", "https://10.0.0.8:8443/h", "ftp://ops.example.com/h",
        ] {
            let message = try refusal(#"{"url":"\#(url)"}"#)
            #expect(message?.hasPrefix("url: ") == true, "\(url): \(message ?? "accepted")")
        }
        #expect(try refusal(#"{"url":"https://user:pw@ops.example.com/h"}"#)?.contains("user name") == true)
        #expect(try refusal(#"{"url":"https://ops.example.com/h#frag"}"#)?.hasPrefix("url: ") == true)
    }

    @Test func anAllowListReplacesTheDefaultRule() throws {
        let list = try UpstreamAllowList(parsing: "http://127.0.0.1:9000,https://*.ops.example.com")
        #expect(try refusal(#"{"url":"http://127.0.0.1:9000/hook"}"#, allowList: list) == nil)
        #expect(try refusal(#"{"url":"https://a.ops.example.com/hook"}"#, allowList: list) == nil)
        let other = try refusal(#"{"url":"https://ops.example.com/hook"}"#, allowList: list)
        #expect(other?.contains("not in TOKEN_GATEWAY_WEBHOOK_ALLOWLIST") == true)
        #expect(try refusal(#"{"url":"http://127.0.0.1:9001/hook"}"#, allowList: list) != nil)
    }

    @Test func eventsMustBeANonEmptyListOfKnownNames() throws {
        let url = #""url":"https://ops.example.com/h""#
        #expect(try refusal("{\(url),\"events\":[]}")?.hasPrefix("events: must name at least one") == true)
        #expect(try refusal("{\(url),\"events\":[\"connection.deleted\"]}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"events\":\"client.rejected\"}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"events\":null}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"events\":[1]}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"secret\":\"whsec_x\"}") == "secret: unknown field.")
        #expect(try refusal(#"{"events":["client.rejected"]}"#) == "url: is required.")
        let some = try WebhookValidation.create(
            body: try body("{\(url),\"events\":[\"client.rejected\",\"connection.recovered\",\"client.rejected\"]}"),
            allowList: nil)
        #expect(some.events == [.recovered, .clientRejected])
    }

    @Test func webhookIDsHaveOneShape() {
        #expect(WebhookValidation.isWebhookID("wh_0123456789abcdef"))
        #expect(!WebhookValidation.isWebhookID("wh_0123456789ABCDEF"))
        #expect(!WebhookValidation.isWebhookID("wh_0123456789abcde"))
        #expect(!WebhookValidation.isWebhookID("xx_0123456789abcdef"))
    }
}
