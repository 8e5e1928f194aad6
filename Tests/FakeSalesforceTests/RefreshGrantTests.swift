import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct RefreshGrantTests {
    @Test func withoutRotationTheRefreshTokenStaysAndIsNotReturned() throws {
        let org = Org()
        let first = object(org.exchange(org.code()))
        let refresh = try #require(first["refresh_token"] as? String)
        let oldAccess = try #require(first["access_token"] as? String)
        for _ in 0..<3 {
            let answer = org.refresh(refresh)
            #expect(answer.status == 200)
            let body = object(answer)
            #expect(body["refresh_token"] == nil)
            #expect(signatureVerifies(body, secret: org.app.clientSecret))
            let access = try #require(body["access_token"] as? String)
            #expect(access != oldAccess && org.core.isLiveAccessToken(access))
        }
        #expect(org.core.isLiveAccessToken(oldAccess))
    }

    @Test func withRotationEachRefreshReplacesTheToken() throws {
        let org = Org(rotate: true)
        var refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        var issued = [refresh]
        for _ in 0..<3 {
            let body = object(org.refresh(refresh))
            let next = try #require(body["refresh_token"] as? String)
            #expect(next != refresh)
            refresh = next
            issued.append(next)
        }
        #expect(org.refresh(refresh).status == 200)
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
        #expect(Array(org.core.refreshTokens(clientID: org.app.clientID).prefix(4)) == issued)
        #expect(org.core.refreshTokens(clientID: org.app.clientID).count == 5)
        #expect(org.core.refreshTokens(clientID: "nobody").isEmpty)
    }

    @Test func reusingARotatedOutTokenRevokesTheWholeFamily() throws {
        let org = Org(rotate: true)
        let first = object(org.exchange(org.code()))
        let original = try #require(first["refresh_token"] as? String)
        let firstAccess = try #require(first["access_token"] as? String)
        let second = object(org.refresh(original))
        let current = try #require(second["refresh_token"] as? String)
        let secondAccess = try #require(second["access_token"] as? String)

        expectOAuthError(org.refresh(original), "invalid_grant", "expired access/refresh token")
        expectOAuthError(org.refresh(current), "invalid_grant", "expired access/refresh token")
        #expect(!org.core.isLiveAccessToken(firstAccess))
        #expect(!org.core.isLiveAccessToken(secondAccess))
        #expect(org.data(secondAccess).status == 401)
        #expect(org.core.stats.refreshFamiliesRevoked == 1)
    }

    @Test func concurrentRefreshesOfOneRotatingTokenLoseTheFamily() async throws {
        let org = Org(rotate: true)
        let refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { org.refresh(refresh).status } }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 200 }.count == 1)
        #expect(statuses.filter { $0 == 400 }.count == 7)
        #expect(org.core.stats.refreshFamiliesRevoked == 1)
    }

    @Test func unknownRefreshTokenIsRefused() {
        let org = Org()
        expectOAuthError(org.refresh("5Aep861nope"), "invalid_grant", "expired access/refresh token")
    }

    @Test func refreshTokenOfAnotherClientIsRefused() throws {
        let org = Org()
        let refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        org.core.register(FakeConnectedApp(clientID: "other", clientSecret: "x"))
        expectOAuthError(
            org.token([
                ("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "other"),
                ("client_secret", "x"),
            ]), "invalid_grant", "expired access/refresh token")
    }

    @Test func revokeAllKillsEveryTokenOfTheUser() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let refresh = try #require(body["refresh_token"] as? String)
        let access = try #require(body["access_token"] as? String)
        org.core.revokeAll(username: "alice@example.com")
        #expect(!org.core.isLiveAccessToken(access))
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
    }
}
