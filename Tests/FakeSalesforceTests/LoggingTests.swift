import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct LoggingTests {
    @Test func logsNeverContainSecretsTokensOrCodes() throws {
        let captured = LogCapture()
        let core = FakeSalesforceCore(baseURL: Org.base, logger: captured.logger())
        let secret = "very-secret-value"
        core.register(
            FakeConnectedApp(
                clientID: "app", clientSecret: secret, redirectURIs: [Org.redirect], rotateRefreshTokens: true,
                jwtPublicKeyPEM: "not a key"))
        let code = core.issueAuthorizationCode(clientID: "app", redirectURI: Org.redirect, username: "u")
        func post(_ path: String, _ fields: [(String, String)]) -> FakeAnswer {
            core.answer(
                method: "POST", path: path, query: "", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array(Encoding.formBody(fields).utf8))
        }
        let body = object(
            post(
                "/services/oauth2/token",
                [
                    ("grant_type", "authorization_code"), ("code", code), ("client_id", "app"),
                    ("client_secret", secret), ("redirect_uri", Org.redirect),
                ]))
        let refresh = try #require(body["refresh_token"] as? String)
        let access = try #require(body["access_token"] as? String)
        let refreshFields = [
            ("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "app"),
            ("client_secret", secret),
        ]
        _ = post("/services/oauth2/token", refreshFields)
        _ = post("/services/oauth2/token", refreshFields)  // rotated out: the family is revoked and logged
        _ = post(
            "/services/oauth2/token",
            [("grant_type", "client_credentials"), ("client_id", "app"), ("client_secret", "wrong")])
        _ = core.answer(
            method: "GET", path: "/services/data/v60.0/", query: "", headers: [("Authorization", "Bearer " + access)],
            body: [])
        _ = core.answer(
            method: "GET", path: "/services/oauth2/revoke", query: "token=" + Encoding.percentEncode(access),
            headers: [], body: [])
        let lines = captured.lines
        #expect(lines.count >= 7)
        #expect(lines.contains { $0.contains("family revoked") })
        for forbidden in [secret, "wrong", code, refresh, access, String(access.dropFirst(20))] {
            #expect(!lines.contains { $0.contains(forbidden) }, "a log line contains a secret")
        }
    }
}
