import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct AuthorizationCodeGrantTests {
    @Test func codeExchangeAnswersLikeSalesforce() throws {
        let org = Org()
        let code = org.code()
        #expect(code.contains(".") && code.hasSuffix("=="))
        let answer = org.exchange(code)
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type")?.hasPrefix("application/json") == true)
        let body = object(answer)
        let access = try #require(body["access_token"] as? String)
        #expect(access.hasPrefix(org.core.orgID + "!AQ") && access.count > 100)
        #expect((body["refresh_token"] as? String)?.hasPrefix("5Aep861") == true)
        #expect(body["token_type"] as? String == "Bearer")
        #expect(body["scope"] as? String == "api web refresh_token")
        #expect(body["instance_url"] as? String == Org.base)
        let userID = try #require(org.core.userID(of: "alice@example.com"))
        #expect(body["id"] as? String == "\(Org.base)/id/\(org.core.orgID)/\(userID)")
        let issuedAt = try #require(body["issued_at"] as? String)
        #expect(issuedAt.count == 13 && Int64(issuedAt) == FakeSalesforceState.milliseconds(org.clock.now))
        #expect(body["expires_in"] == nil)
        #expect(signatureVerifies(body, secret: org.app.clientSecret))
        #expect(!signatureVerifies(body, secret: "another secret"))
        #expect(org.core.isLiveAccessToken(access))
    }

    @Test func accessTokensAreRandom() {
        let org = Org()
        let first = object(org.exchange(org.code()))["access_token"] as? String
        let second = object(org.exchange(org.code()))["access_token"] as? String
        #expect(first != nil && second != nil && first != second)
    }

    @Test func codeIsSingleUse() {
        let org = Org()
        let code = org.code()
        #expect(org.exchange(code).status == 200)
        expectOAuthError(org.exchange(code), "invalid_grant", "expired authorization code")
    }

    @Test func unknownCodeIsInvalid() {
        let org = Org()
        expectOAuthError(org.exchange("aPrxnotacode.x=="), "invalid_grant", "invalid authorization code")
    }

    @Test func codeOfAnotherClientIsInvalid() {
        let org = Org()
        org.core.register(FakeConnectedApp(clientID: "other", clientSecret: "x", redirectURIs: [Org.redirect]))
        let code = org.core.issueAuthorizationCode(
            clientID: "other", redirectURI: Org.redirect, username: "alice@example.com")
        expectOAuthError(org.exchange(code), "invalid_grant", "invalid authorization code")
    }

    @Test func codeExpiresAfterFifteenMinutes() {
        let org = Org()
        let code = org.code()
        org.clock.advance(seconds: 15 * 60 + 1)
        expectOAuthError(org.exchange(code), "invalid_grant", "expired authorization code")
    }

    @Test func redirectURIMustEqualTheBoundOne() {
        let org = Org()
        let code = org.code()
        expectOAuthError(
            org.exchange(code, redirect: "http://localhost/cb"), "redirect_uri_mismatch",
            "redirect_uri must match configuration")
        // A refused exchange does not spend the code.
        #expect(org.exchange(code).status == 200)
    }

    @Test func clientIsAuthenticated() {
        let org = Org()
        expectOAuthError(org.exchange(org.code(), secret: "wrong"), "invalid_client", "invalid client credentials")
        expectOAuthError(
            org.token([
                ("grant_type", "authorization_code"), ("code", org.code()), ("client_id", "nobody"),
                ("client_secret", "x"), ("redirect_uri", Org.redirect),
            ]), "invalid_client_id", "client identifier invalid")
    }

    @Test func clientMayAuthenticateWithHTTPBasic() {
        let org = Org()
        let basic = Data("\(org.app.clientID):\(org.app.clientSecret)".utf8).base64EncodedString()
        let answer = org.post(
            "/services/oauth2/token",
            [("grant_type", "authorization_code"), ("code", org.code()), ("redirect_uri", Org.redirect)],
            headers: [("Authorization", "Basic " + basic)])
        #expect(answer.status == 200)
    }

    @Test func pkceVerifierIsChecked() {
        let org = Org()
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        let code = org.code(challenge: pkceChallenge(verifier))
        expectOAuthError(org.exchange(code), "invalid_grant", "invalid code verifier")
        expectOAuthError(org.exchange(code, verifier: "wrong-verifier"), "invalid_grant", "invalid code verifier")
        #expect(org.exchange(code, verifier: verifier).status == 200)
    }

    @Test func inactiveUserGetsNoTokens() {
        let org = Org()
        let code = org.code()
        org.core.setUserActive("alice@example.com", false)
        expectOAuthError(org.exchange(code), "invalid_grant", "inactive user")
    }

    @Test func noRefreshTokenWithoutRefreshScope() {
        let org = Org(scopes: "api web")
        let body = object(org.exchange(org.code()))
        #expect(body["access_token"] != nil)
        #expect(body["refresh_token"] == nil)
        let offline = Org(scopes: "api offline_access")
        #expect(object(offline.exchange(offline.code()))["refresh_token"] != nil)
    }

    @Test func sixthApprovalRevokesTheOldestRefreshToken() throws {
        let org = Org()
        var refreshTokens: [String] = []
        for _ in 0..<6 {
            refreshTokens.append(try #require(object(org.exchange(org.code()))["refresh_token"] as? String))
        }
        expectOAuthError(org.refresh(refreshTokens[0]), "invalid_grant", "expired access/refresh token")
        for token in refreshTokens.dropFirst() { #expect(org.refresh(token).status == 200) }
    }
}
