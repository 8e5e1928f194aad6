import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct ClientCredentialsAndErrorsTests {
    @Test func clientCredentialsRunsAsTheConfiguredUser() throws {
        let org = Org()
        var app = FakeConnectedApp(clientID: "3MVG9cc", clientSecret: "cc-secret")
        app.clientCredentialsUser = "runas@example.com"
        org.core.register(app)
        let fields = [("grant_type", "client_credentials"), ("client_id", "3MVG9cc"), ("client_secret", "cc-secret")]
        let answer = org.token(fields)
        #expect(answer.status == 200)
        let body = object(answer)
        #expect(body["refresh_token"] == nil)
        #expect(signatureVerifies(body, secret: "cc-secret"))
        #expect((body["id"] as? String)?.hasSuffix(try #require(org.core.userID(of: "runas@example.com"))) == true)
        expectOAuthError(
            org.token([("grant_type", "client_credentials"), ("client_id", "3MVG9cc"), ("client_secret", "nope")]),
            "invalid_client", "invalid client credentials")
        org.core.setUserActive("runas@example.com", false)
        expectOAuthError(org.token(fields), "invalid_grant", "inactive user")
    }

    @Test func clientCredentialsWithoutRunAsUserIsRefused() {
        let org = Org()
        expectOAuthError(
            org.token([
                ("grant_type", "client_credentials"), ("client_id", org.app.clientID),
                ("client_secret", org.app.clientSecret),
            ]), "invalid_grant", "request not supported on this domain")
    }

    @Test func unknownGrantTypeIsUnsupported() {
        let org = Org()
        expectOAuthError(org.token([("grant_type", "password")]), "unsupported_grant_type", "grant type not supported")
        expectOAuthError(org.token([]), "unsupported_grant_type", "grant type not supported")
    }

    @Test func onlyFormBodiesArePosted() {
        let org = Org()
        let json = org.core.answer(
            method: "POST", path: "/services/oauth2/token", query: "",
            headers: [("Content-Type", "application/json")], body: Array(#"{"grant_type":"refresh_token"}"#.utf8))
        #expect(json.status == 400 && object(json)["error"] as? String == "invalid_request")
        let get = org.core.answer(
            method: "GET", path: "/services/oauth2/token", query: "grant_type=client_credentials", headers: [],
            body: [])
        #expect(get.status == 400 && object(get)["error"] as? String == "invalid_request")
        let charset = org.core.answer(
            method: "POST", path: "/services/oauth2/token", query: "",
            headers: [("content-type", "application/x-www-form-urlencoded; charset=UTF-8")],
            body: Array("grant_type=password".utf8))
        expectOAuthError(charset, "unsupported_grant_type", "grant type not supported")
        #expect(org.core.stats.tokenCalls == 3)
        #expect(org.core.stats.tokenCallsByGrant == ["none": 2, "password": 1])
    }
}
