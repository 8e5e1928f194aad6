import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct FaultTests {
    func clientCredentialsOrg() -> (Org, [(String, String)]) {
        let org = Org()
        org.core.register(
            FakeConnectedApp(clientID: "cc", clientSecret: "cc-secret", clientCredentialsUser: "runas@example.com"))
        return (org, [("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "cc-secret")])
    }

    @Test func faultsAreConsumedOnePerTokenCallInOrder() throws {
        let (org, fields) = clientCredentialsOrg()
        org.core.injectFaults([
            .serverError, .garbage, .throttle(retryAfterSeconds: 7), .throttle(retryAfterSeconds: nil),
            .rateLimitBody, .badSignature, .latency(milliseconds: 250),
        ])
        // Calls elsewhere do not consume faults.
        #expect(org.data(nil).status == 401)

        let serverError = org.token(fields)
        #expect(serverError.status == 500)
        #expect(serverError.header("Content-Type")?.hasPrefix("text/html") == true)
        #expect(Encoding.jsonObject(serverError.body) == nil)

        let garbage = org.token(fields)
        #expect(garbage.status == 200 && !garbage.body.isEmpty)
        #expect((try? JSONSerialization.jsonObject(with: Data(garbage.body))) == nil)

        let throttled = org.token(fields)
        #expect(throttled.status == 429 && throttled.header("Retry-After") == "7")
        let throttledBare = org.token(fields)
        #expect(throttledBare.status == 429 && throttledBare.header("Retry-After") == nil)

        let rateLimited = org.token(fields)
        #expect(rateLimited.status == 400)
        #expect(object(rateLimited)["error"] as? String == "rate_limit_exceeded")
        #expect((object(rateLimited)["error_description"] as? String)?.contains("LOGIN_RATE_EXCEEDED") == true)

        let badSignature = org.token(fields)
        #expect(badSignature.status == 200)
        #expect(!signatureVerifies(object(badSignature), secret: "cc-secret"))
        #expect(org.core.isLiveAccessToken(try #require(object(badSignature)["access_token"] as? String)))

        let slow = org.token(fields)
        #expect(slow.status == 200 && slow.delay == .milliseconds(250))
        #expect(signatureVerifies(object(slow), secret: "cc-secret"))

        let normal = org.token(fields)
        #expect(normal.status == 200 && normal.delay == nil)
        #expect(signatureVerifies(object(normal), secret: "cc-secret"))
        #expect(org.core.stats.tokenCalls == 8)
        #expect(org.core.stats.tokenCallsByGrant == ["client_credentials": 8])
    }

    @Test func faultedCallsChangeNothing() throws {
        let org = Org(rotate: true)
        let refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        org.core.injectFaults([.serverError, .garbage, .throttle(retryAfterSeconds: 1), .rateLimitBody])
        let faulted = (0..<4).map { _ in org.refresh(refresh) }
        #expect(faulted.map(\.status) == [500, 200, 429, 400])
        #expect(faulted.allSatisfy { object($0)["access_token"] == nil })
        // The refresh token was never rotated by the faulted calls.
        #expect(org.refresh(refresh).status == 200)
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
    }
}
