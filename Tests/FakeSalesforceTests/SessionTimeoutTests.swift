import Foundation
import Testing

@testable import FakeSalesforce

@Suite struct SessionTimeoutTests {
    @Test func accessTokensDieWhenTheAppsSessionTimesOut() throws {
        let org = Org.lifecycle(sessionSeconds: 600)
        let issued = org.clock.now
        let (access, _, body) = try org.connect()
        let identityPath = String(try #require(body["id"] as? String).dropFirst(Org.base.count))
        #expect(org.core.accessTokenExpiry(access) == issued.addingTimeInterval(600))
        org.clock.advance(seconds: 599)
        #expect(org.data(access).status == 200)
        #expect(org.data(access, path: identityPath).status == 200)
        org.clock.advance(seconds: 1)
        let refused = org.data(access)
        #expect(refused.status == 401)
        #expect(
            String(decoding: refused.body, as: UTF8.self)
                == #"[{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]"#)
        #expect(org.data(access, path: identityPath).status == 403)
        #expect(!org.core.isLiveAccessToken(access))
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", access)]), "unsupported_token_type",
            "this token type is not supported")
    }

    @Test func theDefaultSessionLastsTwoHours() throws {
        let org = Org()
        #expect(org.app.sessionTimeoutSeconds == 7200)
        let (access, _, _) = try org.connect()
        org.clock.advance(seconds: 7199)
        #expect(org.data(access).status == 200)
        org.clock.advance(seconds: 1)
        #expect(org.data(access).status == 401)
    }

    @Test func everyGrantsTokensTimeOutAndARefreshGetsAFreshSession() throws {
        let org = Org.lifecycle(sessionSeconds: 60)
        org.core.register(
            FakeConnectedApp(
                clientID: "cc", clientSecret: "cc-secret", clientCredentialsUser: "svc@example.com",
                sessionTimeoutSeconds: 30))
        let (first, refresh, _) = try org.connect()
        let credentials = try #require(
            object(
                org.token([("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "cc-secret")])
            )["access_token"] as? String)
        org.clock.advance(seconds: 30)
        #expect(!org.core.isLiveAccessToken(credentials) && org.core.isLiveAccessToken(first))
        let second = try #require(object(org.refresh(refresh))["access_token"] as? String)
        org.clock.advance(seconds: 30)
        #expect(!org.core.isLiveAccessToken(first))
        #expect(org.data(second).status == 200)
        org.clock.advance(seconds: 30)
        #expect(org.data(second).status == 401)
    }
}
