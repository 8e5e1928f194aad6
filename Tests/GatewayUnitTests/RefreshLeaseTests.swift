import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct RefreshLeaseTests {
    static func token(fetchedAt: Double, expiresAt: Double) -> CachedToken {
        CachedToken(
            accessToken: "00D!AQ", instanceURL: "https://x", identityURL: "https://x/id/o/u", scope: nil,
            tokenType: "Bearer", issuedAt: fetchedAt, expiresAt: expiresAt, fetchedAt: fetchedAt)
    }

    static func need(minTTL: Double = 60, force: Bool = false, started: Double = 1000) -> TokenNeed {
        TokenNeed(minTTL: minTTL, force: force, started: started, forceGrace: 5)
    }

    // MARK: TokenNeed: the min_ttl_seconds and force_refresh rules

    @Test func aTokenIsGoodWhileMoreThanMinTTLRemains() {
        let token = Self.token(fetchedAt: 500, expiresAt: 1100)
        #expect(Self.need(minTTL: 60).accepts(token, now: 1000))
        #expect(!Self.need(minTTL: 100).accepts(token, now: 1000), "exactly min_ttl left is not enough")
        #expect(!Self.need(minTTL: 0).accepts(token, now: 1100), "an expired token never satisfies")
    }

    @Test func forceRefreshTakesOnlyATokenFetchedWithinTheGraceOrSinceTheRequestBegan() {
        let old = Self.token(fetchedAt: 990, expiresAt: 4000)
        #expect(!Self.need(force: true).accepts(old, now: 1000), "10 s old, grace 5 s")
        let recent = Self.token(fetchedAt: 997, expiresAt: 4000)
        #expect(Self.need(force: true).accepts(recent, now: 1000))
        let afterStart = Self.token(fetchedAt: 1001, expiresAt: 4000)
        #expect(Self.need(force: true, started: 1000).accepts(afterStart, now: 1010))
    }

    @Test func aTokenFetchedSinceTheRequestBeganSatisfiesEvenAMinTTLAboveItsLifetime() {
        let fresh = Self.token(fetchedAt: 1001, expiresAt: 1061)
        #expect(Self.need(minTTL: 3600, started: 1000).accepts(fresh, now: 1002))
        #expect(!Self.need(minTTL: 3600, started: 1002).accepts(fresh, now: 1002))
    }

    // MARK: ConnectionLease transitions

    @Test func claimingAFreeLeaseIncrementsTheFence() {
        var lease = ConnectionLease.free
        let r1 = lease.claim(owner: "a-1", duration: 20)
        #expect(r1 == .claimed(fence: 1, tookOver: false))
        #expect(lease.owner == "a-1" && lease.isLive)
    }

    @Test func aLiveLeaseOfAnotherOwnerIsBusy() {
        var lease = ConnectionLease(owner: "a-1", fence: 4, secondsLeft: 7)
        let r2 = lease.claim(owner: "b-1", duration: 20)
        #expect(r2 == .busy(secondsLeft: 7))
        #expect(lease == ConnectionLease(owner: "a-1", fence: 4, secondsLeft: 7), "nothing changed")
    }

    @Test func aLapsedLeaseIsTakenOverWithANewFence() {
        var lease = ConnectionLease(owner: "a-1", fence: 4, secondsLeft: -0.5)
        let r3 = lease.claim(owner: "b-1", duration: 20)
        #expect(r3 == .claimed(fence: 5, tookOver: true))
        #expect(lease.owner == "b-1")
    }

    @Test func onlyTheOwnerAtItsFenceCanRelease() {
        var lease = ConnectionLease(owner: "a-1", fence: 4, secondsLeft: 3)
        let r4 = lease.release(owner: "b-1", fence: 4)
        #expect(!r4)
        let r5 = lease.release(owner: "a-1", fence: 3)
        #expect(!r5)
        let r6 = lease.release(owner: "a-1", fence: 4)
        #expect(r6)
        #expect(lease.owner == nil && !lease.isLive && lease.fence == 4)
    }

    @Test func aTakenOverOwnerCannotReleaseOrStore() {
        var lease = ConnectionLease(owner: "a-1", fence: 4, secondsLeft: -1)
        _ = lease.claim(owner: "b-1", duration: 20)
        let r7 = lease.release(owner: "a-1", fence: 4)
        #expect(!r7, "the late owner's answer must not be stored")
        let r8 = lease.release(owner: "b-1", fence: 5)
        #expect(r8)
    }

    @Test func aNewAuthorizationSupersedesALeaseInFlight() {
        var lease = ConnectionLease(owner: "a-1", fence: 4, secondsLeft: 10)
        lease.supersede()
        #expect(lease.owner == nil && lease.fence == 5)
        let r9 = lease.release(owner: "a-1", fence: 4)
        #expect(!r9)
    }

    // MARK: RefreshDecision: cache, database or upstream

    @Test func aSatisfyingStoredTokenIsUsedEvenWhileARenewalIsInFlight() {
        let stored = Self.token(fetchedAt: 900, expiresAt: 4000)
        let snapshot = ConnectionSnapshot(
            exists: true, token: stored, hasRefreshToken: true,
            lease: ConnectionLease(owner: "b-1", fence: 2, secondsLeft: 10))
        #expect(
            RefreshDecision.decide(snapshot, grant: .authorizationCode, need: Self.need(), now: 1000)
                == .useStored(stored))
    }

    @Test func anotherOwnersLiveLeaseIsWaitedFor() {
        let snapshot = ConnectionSnapshot(
            exists: true, hasRefreshToken: true, lease: ConnectionLease(owner: "b-1", fence: 2, secondsLeft: 10))
        #expect(
            RefreshDecision.decide(snapshot, grant: .authorizationCode, need: Self.need(), now: 1000)
                == .wait(seconds: 10))
    }

    @Test func aFailureThatEndedTheLeaseWeWaitedOnIsTheAnswer() {
        let failure = GatewayError(.upstreamTimeout, message: "late")
        let snapshot = ConnectionSnapshot(
            exists: true, hasRefreshToken: true, lastFailure: RecordedFailure(at: 1001, error: failure))
        #expect(
            RefreshDecision.decide(snapshot, grant: .authorizationCode, need: Self.need(started: 1000), now: 1002)
                == .fail(failure))
        #expect(
            RefreshDecision.decide(snapshot, grant: .authorizationCode, need: Self.need(started: 1002), now: 1003)
                == .claim(takeover: false), "a request that began after the failure tries again")
    }

    @Test func aDeadRefreshTokenNeedsAPersonButAJWTClientTriesAgain() {
        let snapshot = ConnectionSnapshot(exists: true, needsReauthorization: true, hasRefreshToken: true)
        guard
            case .fail(let error) = RefreshDecision.decide(
                snapshot, grant: .authorizationCode, need: Self.need(), now: 1000)
        else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code.rawValue == "reauthorization_required" && error.code.status == 409)
        #expect(
            RefreshDecision.decide(snapshot, grant: .jwtBearer, need: Self.need(), now: 1000)
                == .claim(takeover: false))
        let noToken = ConnectionSnapshot(exists: true, hasRefreshToken: false)
        #expect(
            RefreshDecision.decide(noToken, grant: .authorizationCode, need: Self.need(), now: 1000)
                != .claim(takeover: false))
    }

    @Test func aTokenOfAConnectionNeedingReauthorizationIsNeverUsed() {
        let stored = Self.token(fetchedAt: 900, expiresAt: 4000)
        let snapshot = ConnectionSnapshot(exists: true, needsReauthorization: true, token: stored)
        #expect(
            RefreshDecision.decide(snapshot, grant: .clientCredentials, need: Self.need(), now: 1000)
                == .claim(takeover: false))
    }

    @Test func aLapsedLeaseIsClaimedAsATakeover() {
        let snapshot = ConnectionSnapshot(
            exists: true, hasRefreshToken: true, lease: ConnectionLease(owner: "dead-1", fence: 9, secondsLeft: -2))
        #expect(
            RefreshDecision.decide(snapshot, grant: .authorizationCode, need: Self.need(), now: 1000)
                == .claim(takeover: true))
    }

    @Test func aStaleStoredTokenIsRefreshed() {
        let stale = Self.token(fetchedAt: 100, expiresAt: 1030)
        let snapshot = ConnectionSnapshot(exists: true, token: stale, hasRefreshToken: true)
        #expect(
            RefreshDecision.decide(snapshot, grant: .authorizationCode, need: Self.need(minTTL: 60), now: 1000)
                == .claim(takeover: false))
    }
}
