import Testing

@testable import TokenGatewayDomain

/// The choice a token request makes, in order and without I/O: memory (`TokenNeed.cacheChoice`), then the
/// connection's row (`RefreshDecision.decide`: stored token, wait, fail), then Salesforce (`claim`).
@Suite struct TokenChoiceTests {
    static func token(fetchedAt: Double, expiresAt: Double) -> CachedToken {
        CachedToken(
            accessToken: "00D!AQ\(fetchedAt)", instanceURL: "https://x", identityURL: "https://x/id/o/u",
            scope: nil, tokenType: "Bearer", issuedAt: fetchedAt, expiresAt: expiresAt, fetchedAt: fetchedAt)
    }

    static func need(minTTL: Double = 60, force: Bool = false, started: Double = 1000) -> TokenNeed {
        TokenNeed(minTTL: minTTL, force: force, started: started, forceGrace: 5)
    }

    /// Where a request ends, given what memory and the row hold.
    enum Source: Equatable { case cache, database, upstream, wait, fail }

    static func source(cached: CachedToken?, row: ConnectionSnapshot, need: TokenNeed, now: Double) -> Source {
        if need.cacheChoice(cached, now: now) == .serve { return .cache }
        switch RefreshDecision.decide(row, grant: .authorizationCode, need: need, now: now) {
        case .useStored: return .database
        case .wait: return .wait
        case .fail: return .fail
        case .claim: return .upstream
        }
    }

    @Test func aFreshCachedTokenIsServedFromMemory() {
        let cached = Self.token(fetchedAt: 900, expiresAt: 4600)
        #expect(Self.need().cacheChoice(cached, now: 1000) == .serve)
        #expect(Self.need(minTTL: 3599).cacheChoice(cached, now: 1000) == .serve)
        #expect(Self.need(minTTL: 3600).cacheChoice(cached, now: 1000) == .pass, "exactly min_ttl left is not enough")
        #expect(Self.need().cacheChoice(nil, now: 1000) == .pass)
    }

    @Test func anExpiredCachedTokenIsNeverServedWhateverTheMinTTL() {
        let cached = Self.token(fetchedAt: 0, expiresAt: 1000)
        #expect(Self.need(minTTL: 0).cacheChoice(cached, now: 1000) == .pass)
        #expect(Self.need(minTTL: 0, force: true).cacheChoice(cached, now: 1000) == .drop)
    }

    @Test func forceRefreshServesOnlyATokenFetchedWithinTheGraceAndDropsAnOlderOne() {
        let young = Self.token(fetchedAt: 997, expiresAt: 4600)
        let old = Self.token(fetchedAt: 990, expiresAt: 4600)
        #expect(Self.need(force: true, started: 1000).cacheChoice(young, now: 1000) == .serve)
        #expect(Self.need(force: true, started: 1000).cacheChoice(old, now: 1000) == .drop)
        #expect(Self.need(force: false, started: 1000).cacheChoice(old, now: 1000) == .serve)
    }

    @Test func memoryThenTheRowThenSalesforce() {
        let stale = Self.token(fetchedAt: 0, expiresAt: 1030)
        let stored = Self.token(fetchedAt: 950, expiresAt: 4550)
        let withStored = ConnectionSnapshot(exists: true, token: stored, hasRefreshToken: true)
        let withStale = ConnectionSnapshot(exists: true, token: stale, hasRefreshToken: true)
        #expect(Self.source(cached: stored, row: withStale, need: Self.need(), now: 1000) == .cache)
        #expect(Self.source(cached: stale, row: withStored, need: Self.need(), now: 1000) == .database)
        #expect(Self.source(cached: nil, row: withStored, need: Self.need(), now: 1000) == .database)
        #expect(Self.source(cached: stale, row: withStale, need: Self.need(), now: 1000) == .upstream)
        #expect(
            Self.source(cached: nil, row: withStored, need: Self.need(minTTL: 3600), now: 1000) == .upstream,
            "a stored token with less than min_ttl_seconds left is refreshed")
    }

    @Test func forceRefreshSkipsAStoredTokenOlderThanTheGraceButTakesOneFetchedSinceTheRequestBegan() {
        let before = ConnectionSnapshot(
            exists: true, token: Self.token(fetchedAt: 900, expiresAt: 4500), hasRefreshToken: true)
        let after = ConnectionSnapshot(
            exists: true, token: Self.token(fetchedAt: 1001, expiresAt: 4601), hasRefreshToken: true)
        let force = Self.need(force: true, started: 1000)
        #expect(Self.source(cached: nil, row: before, need: force, now: 1002) == .upstream)
        #expect(Self.source(cached: nil, row: after, need: force, now: 1002) == .database)
    }

    @Test func aLiveLeaseIsWaitedForAndADeadGrantFailsWithoutACall() {
        let leased = ConnectionSnapshot(
            exists: true, hasRefreshToken: true, lease: ConnectionLease(owner: "b", fence: 1, secondsLeft: 5))
        let dead = ConnectionSnapshot(exists: true, needsReauthorization: true, hasRefreshToken: true)
        #expect(Self.source(cached: nil, row: leased, need: Self.need(), now: 1000) == .wait)
        #expect(Self.source(cached: nil, row: dead, need: Self.need(), now: 1000) == .fail)
    }
}
