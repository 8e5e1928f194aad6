import FakeSalesforce
import Foundation
import Logging
import TestSupport
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// Token requests that reach Salesforce: a client Salesforce refuses, a client changed on another replica,
/// the per-key limit on upstream calls and which failures are retried.
@Suite
struct TokenUpstreamTests {
    @Test func aClientSalesforceRefusesIsClientRejected() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            let patched = try await h.call(
                "PATCH", "/tenants/acme/clients/crm", json: #"{"client_secret":"wrong-secret"}"#)
            #expect(patched.status == 200)
            let refused = try await h.token(key: key)
            #expect(refused.status == 409 && refused["error"] == "client_rejected", "\(refused.text)")
            #expect(refused.json?["upstream"]?["error"] == .string("invalid_client"))
            // The connection itself is fine: fixing the client is enough.
            #expect(
                try await h.call(
                    "PATCH", "/tenants/acme/clients/crm", json: #"{"client_secret":"\#(GatewayHarness.secret)"}"#
                ).status == 200)
            #expect(try await h.token(key: key).status == 200)
        }
    }

    @Test func aClientChangedOnOneReplicaDropsCachedTokensOnTheOthers() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            let first = try await h.exchange(key: key)
            let other = try await h.replica()
            // The second replica learns the token from the database once, then serves it from memory.
            #expect(try await other.token(key: key)["access_token"] == first["access_token"])
            #expect(try await other.token(key: key)["source"] == "cache")
            #expect(
                try await h.call("PATCH", "/tenants/acme/clients/crm", json: #"{"token_ttl_seconds":900}"#).status
                    == 200)
            let renewed = await eventually(within: 1.0) {
                (try? await other.token(key: key))?["source"] == "upstream"
            }
            #expect(renewed)
            let after = try await other.token(key: key)
            #expect(after["access_token"] != first["access_token"])
            let issuedText = try #require(after["issued_at"])
            let expiresText = try #require(after["expires_at"])
            let issued = try #require(ISO8601DateFormatter().date(from: issuedText))
            let expires = try #require(ISO8601DateFormatter().date(from: expiresText))
            #expect(expires.timeIntervalSince(issued) == 900)
            await other.stop(stopFake: false)
        }
    }

    @Test func callsReachingSalesforceAreLimitedPerKey() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE": "2"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            let forced = #","min_ttl_seconds":86400"#
            #expect(try await h.token(key: key, extra: forced).status == 200)
            #expect(try await h.token(key: key, extra: forced).status == 200)
            let limited = try await h.token(key: key, extra: forced)
            #expect(limited.status == 429 && limited["error"] == "rate_limited", "\(limited.text)")
            #expect(Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
            // Served from the cache, the same key is not limited.
            #expect(try await h.token(key: key).status == 200)
        }
    }

    @Test func transientFailuresAreRetriedOnlyWhereRepeatingIsSafe() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            try await h.clientCredentialsClient(runAs: "ops@acme.example")
            // Stateless grant: a 500 and garbage are retried, the third attempt succeeds.
            h.fake.injectFaults([.serverError, .garbage])
            var before = h.fake.stats.tokenCalls
            let cc = try await h.token(key: key, client: "cc")
            #expect(cc.status == 200 && cc["source"] == "upstream")
            #expect(h.fake.stats.tokenCalls == before + 3)
            // A refresh token is never repeated after Salesforce may have acted on it.
            h.fake.injectFaults([.serverError])
            before = h.fake.stats.tokenCalls
            #expect(try await h.token(key: key, extra: #","min_ttl_seconds":86400"#).status == 502)
            #expect(h.fake.stats.tokenCalls == before + 1)
            // Bounded: three 500s in a row end the attempt.
            h.fake.injectFaults([.serverError, .serverError, .serverError, .serverError])
            before = h.fake.stats.tokenCalls
            #expect(try await h.token(key: key, client: "cc", extra: #","min_ttl_seconds":86400"#).status == 502)
            #expect(h.fake.stats.tokenCalls == before + 3)
            h.fake.injectFaults([])
        }
    }
}
