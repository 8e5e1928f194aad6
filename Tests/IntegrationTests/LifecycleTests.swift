import FakeSalesforce
import Foundation
import TestSupport
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// Tokens without waiting: refresh ahead, keep-alive, expiry from introspection, `last_error`; one and two replicas.
@Suite struct LifecycleTests {
    static let clientID = "3MVG9-crm"

    /// The harness's app with its lifecycle policies (re-registering keeps the app's tokens).
    static func register(
        _ h: GatewayHarness, sessionTimeout: Int = 7200, unusedExpiry: Int? = nil
    ) {
        h.fake.register(
            FakeConnectedApp(
                clientID: clientID, clientSecret: GatewayHarness.secret,
                redirectURIs: [GatewayHarness.redirect, "http://127.0.0.1:1/callback"],
                scopes: "api web refresh_token", sessionTimeoutSeconds: sessionTimeout,
                refreshTokenUnusedExpirySeconds: unusedExpiry))
    }

    static func connection(_ h: GatewayHarness, _ id: String = "default") async throws -> JSONValue? {
        let listed = try await h.call("GET", "/tenants/acme/clients/crm/connections")
        guard case .array(let connections)? = listed.json?["connections"] else { return nil }
        return connections.first { $0["id"] == .string(id) }
    }

    static func seconds(_ value: JSONValue?) -> Double? {
        guard let text = value?.stringValue else { return nil }
        return ISO8601DateFormatter().date(from: text)?.timeIntervalSince1970
    }

    static func refreshCalls(_ h: GatewayHarness) -> Int { h.fake.stats.tokenCallsByGrant["refresh_token"] ?? 0 }

    @Test func aTokenInUseIsRenewedAheadSoEveryAnswerComesFromMemory() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(ttl: 60)
            #expect(try await h.exchange(key: key).status == 200)
            var sources: [String] = []
            var slowest = Duration.zero
            let until = ContinuousClock.now + .seconds(75)
            while ContinuousClock.now < until {
                let started = ContinuousClock.now
                let reply = try await h.token(key: key, extra: #","min_ttl_seconds":20"#)
                slowest = max(slowest, ContinuousClock.now - started)
                #expect(reply.status == 200)
                sources.append(reply["source"] ?? "?")
                try await Task.sleep(for: .seconds(1))
            }
            #expect(sources.count >= 70)
            #expect(sources.allSatisfy { $0 == "cache" }, "\(sources.filter { $0 != "cache" }.count) not from memory")
            #expect(slowest < .milliseconds(100), "the slowest answer took \(slowest)")
            // A 60 s token asked with min_ttl 20 is renewed once half of it has passed: every 30 s.
            let renewals = Self.refreshCalls(h)
            #expect((2...4).contains(renewals), "\(renewals) refreshes in 75 s")
            #expect(h.gateway.api.metrics.backgroundRefreshes(reason: "ahead", outcome: "renewed") == renewals)
        }
    }

    @Test func keepAliveSavesAnIdleConnectionFromUnusedRefreshTokenExpiry() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_KEEPALIVE_SECONDS": "10"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            Self.register(h, unusedExpiry: 25)
            #expect(try await h.exchange(key: key).status == 200)
            try await Task.sleep(for: .seconds(45))
            let reply = try await h.token(key: key, extra: #","min_ttl_seconds":86400"#)
            #expect(reply.status == 200 && reply["source"] == "upstream", "\(reply.text)")
            #expect(h.fake.stats.refreshTokensExpiredUnused == 0)
            let kept = h.gateway.api.metrics.backgroundRefreshes(reason: "keepalive", outcome: "renewed")
            #expect((3...5).contains(kept), "\(kept) keep-alive refreshes in 45 s at a 10 s period")
            #expect(try await Self.connection(h)?["status"] == .string("active"))
        }
    }

    @Test func expiryComesFromIntrospectionOncePerToken() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS": "0"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(ttl: 3600)
            Self.register(h, sessionTimeout: 900)
            let exchanged = try await h.exchange(key: key)
            #expect(exchanged.status == 200)
            let issued = try #require(Self.seconds(exchanged.json?["issued_at"]))
            #expect(Self.seconds(exchanged.json?["expires_at"]).map { $0 - issued } == 900)
            for _ in 0..<10 { #expect(try await h.token(key: key)["source"] == "cache") }
            #expect(h.fake.stats.introspectionCallsByClient[Self.clientID] == 1)
            let listed = try await Self.connection(h)
            #expect(Self.seconds(listed?["expires_at"]) == Self.seconds(exchanged.json?["expires_at"]))
            let refreshed = try await h.token(key: key, extra: #","force_refresh":true"#)
            #expect(refreshed["source"] == "upstream")
            let refreshedIssued = try #require(Self.seconds(refreshed.json?["issued_at"]))
            #expect(Self.seconds(refreshed.json?["expires_at"]).map { $0 - refreshedIssued } == 900)
            #expect(h.fake.stats.introspectionCallsByClient[Self.clientID] == 2)
            #expect(h.gateway.api.metrics.introspections(outcome: .active) == 2)

            let patched = try await h.call("PATCH", "/tenants/acme/clients/crm", json: #"{"introspect":false}"#)
            #expect(patched.status == 200 && patched.json?["introspect"] == .bool(false))
            let plain = try await h.token(key: key)
            #expect(plain["source"] == "upstream", "a changed client drops its cached tokens")
            let plainIssued = try #require(Self.seconds(plain.json?["issued_at"]))
            #expect(Self.seconds(plain.json?["expires_at"]).map { $0 - plainIssued } == 3600)
            #expect(h.fake.stats.introspectionCallsByClient[Self.clientID] == 2, "no introspection when off")
        }
    }

    @Test func lastErrorCarriesUpstreamDetailsUntilANewExchange() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            #expect(try await Self.connection(h)?["last_error"] == .null)
            h.fake.revokeAll(username: "ops@acme.example")
            let refused = try await h.token(key: key, extra: #","min_ttl_seconds":86400"#)
            #expect(refused.status == 409 && refused["error"] == "reauthorization_required")
            let failed = try #require(try await Self.connection(h))
            #expect(failed["status"] == .string("reauthorization_required"))
            #expect(failed["expires_at"] == .null)
            let error = try #require(failed["last_error"])
            #expect(error["error"] == .string("reauthorization_required"))
            #expect(error["upstream"]?["status"] == .number(400))
            #expect(error["upstream"]?["error"] == .string("invalid_grant"))
            #expect(error["upstream"]?["error_description"] == .string("expired access/refresh token"))
            #expect(Self.seconds(error["at"]).map { abs($0 - Date().timeIntervalSince1970) < 30 } == true)

            #expect(try await h.exchange(key: key).status == 200)
            let recovered = try #require(try await Self.connection(h))
            #expect(recovered["last_error"] == .null)
            #expect(recovered["status"] == .string("active"))
            #expect(Self.seconds(recovered["expires_at"]) != nil)
        }
    }

    @Test func twoReplicasRenewEachTokenOnceAheadAndKeepAlive() async throws {
        // Keep-alive at 35 s: the busy connection's refresh token is used by its renewal at 30 s, so only the idle
        // one falls due for keep-alive within the 45 s of the test.
        try await withHarness(extra: ["TOKEN_GATEWAY_KEEPALIVE_SECONDS": "35"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(ttl: 60)
            #expect(try await h.exchange(key: key, connection: "busy").status == 200)
            #expect(try await h.exchange(key: key, connection: "idle").status == 200)
            let other = try await h.replica()
            let before = Self.refreshCalls(h)
            let until = ContinuousClock.now + .seconds(45)
            var sources: [String] = []
            while ContinuousClock.now < until {
                for replica in [h, other] {
                    let reply = try await replica.token(key: key, connection: "busy", extra: #","min_ttl_seconds":20"#)
                    sources.append(reply["source"] ?? "?")
                }
                try await Task.sleep(for: .seconds(1))
            }
            let metrics = [h.gateway.api.metrics, other.gateway.api.metrics]
            func total(_ reason: String, _ outcome: String) -> Int {
                metrics.map { $0.backgroundRefreshes(reason: reason, outcome: outcome) }.reduce(0, +)
            }
            // Both replicas hold the busy token and see it due at 30 s; both sweep for the idle connection.
            #expect(total("ahead", "renewed") == 1, "renewed ahead \(total("ahead", "renewed")) times")
            #expect(total("keepalive", "renewed") == 1, "kept alive \(total("keepalive", "renewed")) times")
            #expect(total("ahead", "stored") >= 1, "the other replica took the renewed token from the database")
            #expect(Self.refreshCalls(h) - before == 2, "one Salesforce call per renewal")
            #expect(sources.allSatisfy { $0 == "cache" }, "\(sources.filter { $0 != "cache" })")
            await other.stop(stopFake: false)
        }
    }
}
