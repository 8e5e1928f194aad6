import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// When tokens in use are renewed in the background, and which ones: pure rules and the cache's demand records.
@Suite struct RefreshAheadTests {
    static let key = ConnectionKey(tenant: "acme", client: "crm", connection: "default")

    static func token(_ name: String = "t1", issuedAt: Double = 1000, lifetime: Double = 60) -> CachedToken {
        CachedToken(
            accessToken: name, instanceURL: "", identityURL: "", scope: nil, tokenType: "Bearer", issuedAt: issuedAt,
            expiresAt: issuedAt + lifetime, fetchedAt: issuedAt)
    }

    @Test func aTokenIsRenewedAMarginBeforeItsRemainingLifetimeFallsToTheLargestAskedMinTTL() {
        let hour = Self.token(lifetime: 3600)
        #expect(hour.renewAt(askedTTL: 60, margin: 30) == 1000 + 3600 - 90)
    }

    @Test func neverBeforeHalfOfItsLifetime() {
        let minute = Self.token(lifetime: 60)
        #expect(minute.renewAt(askedTTL: 20, margin: 30) == 1030)
        #expect(minute.renewAt(askedTTL: 86400, margin: 30) == 1030)
    }

    /// A caller's request for the cached token with `min_ttl_seconds` = `minTTL`, as a hit makes it.
    static func ask(_ cache: TokenCache, minTTL: Double) {
        let need = TokenNeed(minTTL: minTTL, force: false, started: 1000, forceGrace: 5)
        _ = cache.hit(Self.key, need: need, now: 1000, render: { _ in [] })
    }

    @Test func onlyTokensSomebodyAskedForAreDue() {
        let cache = TokenCache()
        cache.put(Self.key, Self.token(), demand: nil)
        #expect(cache.dueForRenewal(now: 1050, margin: 30, limit: 10).isEmpty, "nobody asked: left to expire")
        Self.ask(cache, minTTL: 20)
        let due = cache.dueForRenewal(now: 1050, margin: 30, limit: 10)
        #expect(due.count == 1 && due[0].demand == 20)
        #expect(cache.dueForRenewal(now: 1029, margin: 30, limit: 10).isEmpty, "not before half of the lifetime")
        #expect(cache.dueForRenewal(now: 1061, margin: 30, limit: 10).isEmpty, "an expired token is not renewed")
    }

    @Test func theLargestMinTTLAskedIsRemembered() {
        let cache = TokenCache()
        cache.put(Self.key, Self.token(lifetime: 3600), demand: 60)
        Self.ask(cache, minTTL: 300)
        Self.ask(cache, minTTL: 10)
        #expect(cache.dueForRenewal(now: 1000 + 3600 - 330, margin: 30, limit: 10).first?.demand == 300)
        #expect(cache.dueForRenewal(now: 1000 + 3600 - 331, margin: 30, limit: 10).isEmpty)
    }

    @Test func aRenewedTokenStartsWithNoDemandButTheSameTokenReadBackKeepsIt() {
        let cache = TokenCache()
        cache.put(Self.key, Self.token("t1"), demand: 20)
        cache.put(Self.key, Self.token("t1"), demand: nil)
        #expect(cache.dueForRenewal(now: 1050, margin: 30, limit: 10).count == 1, "the same token keeps its demand")
        cache.put(Self.key, Self.token("t2", issuedAt: 1040), demand: nil)
        #expect(cache.dueForRenewal(now: 1075, margin: 30, limit: 10).isEmpty, "a renewal is nobody's request")
    }

    @Test func aFailedRenewalIsBackedOffAndTheBackOffGrows() {
        let cache = TokenCache()
        cache.put(Self.key, Self.token(lifetime: 3600), demand: 60)
        let due = 1000 + 3600 - 90.0
        cache.renewalFailed(Self.key, now: due)
        #expect(cache.dueForRenewal(now: due + 4, margin: 30, limit: 10).isEmpty)
        #expect(cache.dueForRenewal(now: due + 5, margin: 30, limit: 10).count == 1)
        cache.renewalFailed(Self.key, now: due + 5)
        #expect(cache.dueForRenewal(now: due + 14, margin: 30, limit: 10).isEmpty, "10 s after the second failure")
        #expect(cache.dueForRenewal(now: due + 15, margin: 30, limit: 10).count == 1)
    }

    @Test func theSoonestDueComeFirstWithinTheLimit() {
        let cache = TokenCache()
        for index in 0..<5 {
            let key = ConnectionKey(tenant: "acme", client: "crm", connection: "c\(index)")
            cache.put(key, Self.token("t\(index)", issuedAt: 1000 + Double(index)), demand: 20)
        }
        let due = cache.dueForRenewal(now: 1100 - 45, margin: 30, limit: 2)
        #expect(due.map(\.key.connection) == ["c0", "c1"])
    }
}
