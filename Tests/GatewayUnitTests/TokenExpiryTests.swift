import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct TokenExpiryTests {
    static let issuedAtMillis: Int64 = 1_764_399_600_123
    static var issuedAt: Double { Double(issuedAtMillis) / 1000 }

    static func expiry(ttl: Int, exp: Int64?) -> Double {
        TokenExpiry.expiresAt(issuedAtMillis: issuedAtMillis, tokenTTLSeconds: ttl, introspectedExp: exp)
    }

    @Test func theEarlierOfIntrospectionAndTheTTLWins() {
        let shortSession = Int64(Self.issuedAt) + 900
        #expect(Self.expiry(ttl: 3600, exp: shortSession) == Double(shortSession))
        let longSession = Int64(Self.issuedAt) + 7200
        #expect(Self.expiry(ttl: 3600, exp: longSession) == Self.issuedAt + 3600)
    }

    @Test func withoutIntrospectionTheTTLApplies() {
        #expect(Self.expiry(ttl: 3600, exp: nil) == Self.issuedAt + 3600)
        #expect(Self.expiry(ttl: 60, exp: nil) == Self.issuedAt + 60)
    }

    @Test func anExpNotAfterIssuedAtIsIgnored() {
        for exp in [Int64(Self.issuedAt), Int64(Self.issuedAt) - 3600, 0] {
            #expect(Self.expiry(ttl: 3600, exp: exp) == Self.issuedAt + 3600, "\(exp)")
        }
        let justAfter = Int64(Self.issuedAt) + 1
        #expect(Self.expiry(ttl: 3600, exp: justAfter) == Double(justAfter))
    }
}
