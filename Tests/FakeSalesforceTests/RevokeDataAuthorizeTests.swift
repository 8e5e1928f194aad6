import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct RevokeDataAuthorizeTests {
    @Test func revokingARefreshTokenRevokesItsAccessTokens() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let refresh = try #require(body["refresh_token"] as? String)
        let access1 = try #require(body["access_token"] as? String)
        let access2 = try #require(object(org.refresh(refresh))["access_token"] as? String)
        #expect(org.post("/services/oauth2/revoke", [("token", refresh)]).status == 200)
        #expect(!org.core.isLiveAccessToken(access1) && !org.core.isLiveAccessToken(access2))
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        // Revoking what is no longer live answers as Salesforce does for an invalid token.
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", refresh)]), "unsupported_token_type",
            "this token type is not supported")
        #expect(org.core.stats.revokeCalls == 2)
    }

    @Test func revokingAnAccessTokenRevokesOnlyIt() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let refresh = try #require(body["refresh_token"] as? String)
        let access = try #require(body["access_token"] as? String)
        let other = try #require(object(org.refresh(refresh))["access_token"] as? String)
        let revoke = org.core.answer(
            method: "GET", path: "/services/oauth2/revoke", query: "token=" + Encoding.percentEncode(access),
            headers: [], body: [])
        #expect(revoke.status == 200)
        #expect(!org.core.isLiveAccessToken(access) && org.core.isLiveAccessToken(other))
        #expect(org.refresh(refresh).status == 200)
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", "unknown")]), "unsupported_token_type",
            "this token type is not supported")
    }

    @Test func dataEndpointAcceptsOnlyLiveTokens() throws {
        let org = Org()
        let access = try #require(object(org.exchange(org.code()))["access_token"] as? String)
        let ok = org.data(access)
        #expect(ok.status == 200 && object(ok)["sobjects"] as? String == "/services/data/v60.0/sobjects")
        #expect(org.data(access, path: "/services/data/v60.0/query").status == 200)
        for token in [nil, "00Dbogus!AQxyz"] {
            let refused = org.data(token)
            #expect(refused.status == 401)
            #expect(
                String(decoding: refused.body, as: UTF8.self)
                    == #"[{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]"#)
        }
        #expect(org.post("/services/oauth2/revoke", [("token", access)]).status == 200)
        #expect(org.data(access).status == 401)
        #expect(org.core.stats.dataCalls == 5)
    }

    @Test func identityURLAnswersForLiveTokens() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let access = try #require(body["access_token"] as? String)
        let id = try #require(body["id"] as? String)
        let path = String(id.dropFirst(Org.base.count))
        let answer = org.data(access, path: path)
        #expect(answer.status == 200 && object(answer)["username"] as? String == "alice@example.com")
        #expect(org.data(nil, path: path).status == 403)
    }

    @Test func introspectionReportsLiveTokens() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let access = try #require(body["access_token"] as? String)
        let credentials = [("client_id", org.app.clientID), ("client_secret", org.app.clientSecret)]
        let live = object(org.post("/services/oauth2/introspect", [("token", access)] + credentials))
        #expect(live["active"] as? Bool == true && live["username"] as? String == "alice@example.com")
        #expect(live["token_type"] as? String == "access_token")
        _ = org.post("/services/oauth2/revoke", [("token", access)])
        let dead = object(org.post("/services/oauth2/introspect", [("token", access)] + credentials))
        #expect(dead["active"] as? Bool == false)
    }

    func authorize(_ org: Org, _ query: [(String, String)]) -> FakeAnswer {
        org.core.answer(
            method: "GET", path: "/services/oauth2/authorize", query: Encoding.formBody(query), headers: [], body: [])
    }

    @Test func authorizeRedirectsWithAPercentEncodedCodeAndTheState() throws {
        let org = Org()
        org.core.setAuthorizeUser("alice@example.com")
        let verifier = "verifier-0123456789-0123456789-0123456789-0123"
        let answer = authorize(
            org,
            [
                ("response_type", "code"), ("client_id", org.app.clientID), ("redirect_uri", Org.redirect),
                ("state", "st ate/1"), ("code_challenge", pkceChallenge(verifier)),
                ("code_challenge_method", "S256"), ("scope", "api refresh_token"),
            ])
        #expect(answer.status == 302)
        let location = try #require(answer.header("Location"))
        #expect(location.hasPrefix(Org.redirect + "?code=aPrx"))
        #expect(location.contains("%3D%3D&state=st%20ate%2F1"))
        let components = try #require(URLComponents(string: location))
        let code = try #require(components.queryItems?.first { $0.name == "code" }?.value)
        #expect(components.queryItems?.first { $0.name == "state" }?.value == "st ate/1")
        #expect(code.hasSuffix("=="))
        expectOAuthError(org.exchange(code), "invalid_grant", "invalid code verifier")
        #expect(org.exchange(code, verifier: verifier).status == 200)
    }

    @Test func authorizeShowsAnErrorPageForUnknownClientOrRedirect() {
        let org = Org()
        org.core.setAuthorizeUser("alice@example.com")
        let unknown = authorize(
            org, [("response_type", "code"), ("client_id", "nobody"), ("redirect_uri", Org.redirect)])
        #expect(unknown.status == 400 && unknown.header("Location") == nil)
        #expect(String(decoding: unknown.body, as: UTF8.self).contains("invalid_client_id"))
        let badRedirect = authorize(
            org, [("response_type", "code"), ("client_id", org.app.clientID), ("redirect_uri", "https://evil/cb")])
        #expect(badRedirect.status == 400 && badRedirect.header("Location") == nil)
        #expect(String(decoding: badRedirect.body, as: UTF8.self).contains("redirect_uri_mismatch"))
    }

    @Test func authorizeWithoutSignedInUserIsDenied() throws {
        let org = Org()
        let answer = authorize(
            org,
            [
                ("response_type", "code"), ("client_id", org.app.clientID), ("redirect_uri", Org.redirect),
                ("state", "s1"),
            ])
        #expect(answer.status == 302)
        #expect(
            answer.header("Location") == Org.redirect
                + "?error=access_denied&error_description=end-user%20denied%20authorization&state=s1")
    }
}
