import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct TokenBucketTests {
    @Test func aFullBucketAdmitsItsBurstThenRefillsAtItsRate() {
        var bucket = TokenBucket(capacity: 3, ratePerSecond: 2, now: 100)
        func take(_ now: Double) -> Bool { bucket.take(now: now) }
        for _ in 0..<3 { #expect(take(100)) }
        #expect(!take(100))
        #expect(bucket.secondsUntilAvailable(now: 100) == 0.5)
        #expect(!take(100.25))
        #expect(take(100.5))
        #expect(!take(100.5))
        #expect(!bucket.isFull(now: 101.9))
        #expect(bucket.isFull(now: 102))
        #expect(bucket.available(now: 1000) == 3)  // never above capacity
    }

    @Test func aClockThatGoesBackwardsRefillsNothing() {
        var bucket = TokenBucket(capacity: 1, ratePerSecond: 1, now: 50)
        func take(_ now: Double) -> Bool { bucket.take(now: now) }
        #expect(take(50))
        #expect(!take(10))
        #expect(bucket.secondsUntilAvailable(now: 10) == 1)
        #expect(take(51))
    }
}

@Suite struct FailedAuthenticationLimiterTests {
    @Test func tenFailuresPassThenOneASecondAndTheWaitIsRoundedUp() {
        var limiter = FailedAuthenticationLimiter()
        for _ in 0..<10 {
            #expect(limiter.retryAfter(address: "10.0.0.1", now: 0) == nil)
            limiter.recordFailure(address: "10.0.0.1", now: 0)
        }
        #expect(limiter.retryAfter(address: "10.0.0.1", now: 0) == 1)
        #expect(limiter.retryAfter(address: "10.0.0.1", now: 0.2) == 1)
        #expect(limiter.retryAfter(address: "10.0.0.2", now: 0) == nil)  // per address
        #expect(limiter.retryAfter(address: "10.0.0.1", now: 1) == nil)
        limiter.recordFailure(address: "10.0.0.1", now: 1)
        #expect(limiter.retryAfter(address: "10.0.0.1", now: 1.5) == 1)
        #expect(limiter.retryAfter(address: "10.0.0.1", now: 2) == nil)
    }

    @Test func addressesPastTheBoundShareOneBucketAndRefilledOnesAreForgotten() {
        var limiter = FailedAuthenticationLimiter(maxAddresses: 3)
        for address in ["a", "b", "c"] { limiter.recordFailure(address: address, now: 0) }
        #expect(limiter.count == 3)
        for _ in 0..<10 { limiter.recordFailure(address: "d", now: 0.5) }
        #expect(limiter.count == 4)  // a, b, c and the shared bucket
        #expect(limiter.retryAfter(address: "e", now: 0.5) == 1)  // an unseen address waits with the shared bucket
        #expect(limiter.retryAfter(address: "a", now: 0.5) == nil)
        // A second later a, b and c have refilled and make room for a new address of its own.
        limiter.recordFailure(address: "f", now: 2)
        #expect(limiter.count == 2)
        #expect(limiter.retryAfter(address: "f", now: 2) == nil)
    }
}

@Suite struct LogSamplerTests {
    @Test func oneLineASecondPerReasonAndTheNextCountsTheLeftOut() {
        var sampler = LogSampler()
        func admit(_ reason: String, _ now: Double) -> Int? { sampler.admit(reason, now: now) }
        #expect(admit("unauthorized", 0) == 0)
        #expect(admit("unauthorized", 0.1) == nil)
        #expect(admit("unauthorized", 0.9) == nil)
        #expect(admit("rate_limited", 0.9) == 0)  // another reason has its own second
        #expect(admit("unauthorized", 1.0) == 2)
        #expect(admit("unauthorized", 2.5) == 0)
    }
}
