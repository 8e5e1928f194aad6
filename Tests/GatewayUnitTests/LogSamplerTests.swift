import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

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
