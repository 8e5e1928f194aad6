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
