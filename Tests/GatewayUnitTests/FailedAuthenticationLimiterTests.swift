import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

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
