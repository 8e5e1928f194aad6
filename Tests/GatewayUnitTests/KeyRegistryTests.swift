import HTTPServer
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct KeyRegistryTests {
    @Test func generatedKeysCheckInMemoryAndOthersDoNot() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        let made = KeyRegistry.generate()
        #expect(made.key.hasPrefix("tgw_\(made.id)_"))
        #expect(KeyRegistry.keyID(of: made.key) == made.id)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
        var wrong = Array(made.key)
        wrong[wrong.count - 1] = wrong.last == "A" ? "B" : "A"
        #expect(registry.check(authorization: "Bearer \(String(wrong))") == .invalid)
        #expect(registry.check(authorization: "Bearer " + String(repeating: "a", count: 40)) == .admin)
        #expect(registry.check(authorization: "Basic abc") == .invalid)
        #expect(registry.check(authorization: nil) == .invalid)
        registry.remove(id: made.id)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
    }

    @Test func aKeyAlreadyMatchedIsRememberedUntilItsEntryChanges() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        let made = KeyRegistry.generate()
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        var wrong = Array(made.key)
        wrong[wrong.count - 1] = wrong.last == "A" ? "B" : "A"
        for _ in 0..<3 {  // the first check hashes and remembers; the next ones compare with what was remembered
            #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
            #expect(registry.check(authorization: "Bearer \(String(wrong))") == .invalid)
        }
        registry.replaceAll([])  // a reload without the key forgets it at once
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
        registry.removeTenant("acme")
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        // The same id with another hash (a rekeyed entry): the remembered bytes no longer pass.
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
        registry.insert(id: made.id, tenant: "acme", hexHash: String(repeating: "0", count: 64))
        #expect(registry.check(authorization: "Bearer \(made.key)") == .invalid)
    }

    @Test func keyIDsTheDatabaseDidNotKnowAreRefusedWithoutAskingAgain() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        let made = KeyRegistry.generate()
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        registry.rememberUnknown(id: made.id)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .invalid)
        registry.rememberUnknown(id: made.id, now: TokenService.now - KeyRegistry.unknownMemorySeconds - 1)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        // A key that is then inserted (made here) is found regardless.
        registry.rememberUnknown(id: made.id)
        registry.insert(id: made.id, tenant: "t", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "t"))
    }

    @Test func usageIsBatched() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        registry.markUsed(id: "k", now: 10)
        registry.markUsed(id: "k", now: 20)
        registry.tokenIssued(id: "k", tenant: "t")
        registry.tokenIssued(id: "k", tenant: "t")
        let usage = registry.drainUsage()
        #expect(usage.lastUsed == ["k": 20])
        #expect(usage.issued["k"]?.count == 2)
        #expect(registry.drainUsage().lastUsed.isEmpty)
    }

    @Test func rateLimiterRefillsOverTime() {
        let limiter = UpstreamRateLimiter(perMinute: 2)
        #expect(limiter.take(keyID: "k", now: 0) == nil)
        #expect(limiter.take(keyID: "k", now: 0) == nil)
        #expect(limiter.take(keyID: "k", now: 0) == 30)
        #expect(limiter.take(keyID: "k", now: 30) == nil)
        #expect(limiter.take(keyID: "other", now: 0) == nil)
    }
}
