import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct ConcurrencyTests {
    @Test func manyConcurrentTokenCallsKeepExactCounters() async throws {
        let org = Org()
        org.core.register(FakeConnectedApp(clientID: "cc", clientSecret: "s", clientCredentialsUser: "svc"))
        let fields = [("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "s")]
        let tasks = 16
        let callsPerTask = 100
        let tokens = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    (0..<callsPerTask).compactMap { _ in object(org.token(fields))["access_token"] as? String }
                }
            }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(tokens.count == tasks * callsPerTask)
        #expect(Set(tokens).count == tokens.count)
        let stats = org.core.stats
        #expect(stats.tokenCalls == tasks * callsPerTask)
        #expect(stats.tokenCallsByGrant == ["client_credentials": tasks * callsPerTask])
        #expect(tokens.allSatisfy { org.core.isLiveAccessToken($0) })
    }
}
