import Foundation
import Testing

@testable import FakeSalesforce

@Suite struct RefreshTokenUnusedExpiryTests {
    @Test func eachRefreshRestartsTheClockAndAnIdleTokenDies() throws {
        let org = Org.lifecycle(unusedExpirySeconds: 3600)
        let (access, refresh, _) = try org.connect()
        org.clock.advance(seconds: 3599)
        #expect(org.refresh(refresh).status == 200)
        org.clock.advance(seconds: 3599)
        let last = try #require(object(org.refresh(refresh))["access_token"] as? String)
        org.clock.advance(seconds: 3600)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        #expect(org.core.stats.refreshTokensExpiredUnused == 2)
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
        // The policy kills the refresh token only; access tokens keep their own session timeout.
        #expect(!org.core.isLiveAccessToken(access) && org.core.isLiveAccessToken(last))
        #expect(object(org.introspect(refresh))["active"] as? Bool == false)
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", refresh)]), "unsupported_token_type",
            "this token type is not supported")
    }

    @Test func aRefusedRefreshIsNoUse() throws {
        let org = Org.lifecycle(unusedExpirySeconds: 100)
        let (_, refresh, _) = try org.connect()
        org.clock.advance(seconds: 60)
        org.core.setUserActive("alice@example.com", false)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "inactive user")
        org.core.setUserActive("alice@example.com", true)
        org.clock.advance(seconds: 40)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
    }

    @Test func withRotationEachNewRefreshTokenStartsItsOwnClock() throws {
        let org = Org.lifecycle(unusedExpirySeconds: 100, rotate: true)
        var (_, refresh, _) = try org.connect()
        for _ in 0..<3 {
            org.clock.advance(seconds: 99)
            refresh = try #require(object(org.refresh(refresh))["refresh_token"] as? String)
        }
        org.clock.advance(seconds: 100)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
    }

    @Test func thePolicyIsJudgedWhenTheTokenIsPresented() throws {
        let org = Org()
        #expect(org.app.refreshTokenUnusedExpirySeconds == nil)
        let (_, refresh, _) = try org.connect()
        org.clock.advance(seconds: 365 * 86400)
        #expect(org.refresh(refresh).status == 200)
        var strict = org.app
        strict.refreshTokenUnusedExpirySeconds = 10
        org.core.register(strict)
        org.clock.advance(seconds: 10)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
    }
}
