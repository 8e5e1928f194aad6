import FakeSalesforce
import Foundation
import TestSupport
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite
struct TokenFlowTests {
    @Test(arguments: ["raw", "url-encoded", "redirect-url"])
    func exchangeAcceptsEachShapeOfCode(_ shape: String) async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            let reply = try await h.exchange(key: key) { code in
                #expect(code.contains(".") && code.hasSuffix("=="))
                let encoded = code.addingPercentEncoding(
                    withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".-_~")))!
                switch shape {
                case "raw": return code
                case "url-encoded": return encoded
                default: return "\(GatewayHarness.redirect)?code=\(encoded)&state=abc"
                }
            }
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply["source"] == "upstream" && reply["token_type"] == "Bearer")
            #expect(reply["client"] == "crm" && reply["connection"] == "default")
            #expect(reply.json?["warnings"] == nil)
            let connections = try await h.call("GET", "/tenants/acme/clients/crm/connections")
            #expect(connections.text.contains(#""status":"active""#) && connections.text.contains(#""user_id":"005"#))
        }
    }

    @Test func tokenIsServedFromCacheAndAcceptedBySalesforce() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            let exchanged = try await h.exchange(key: key)
            let calls = h.fake.stats.tokenCalls
            let cached = try await h.token(key: key)
            #expect(cached.status == 200 && cached["source"] == "cache")
            #expect(cached["access_token"] == exchanged["access_token"])
            #expect(h.fake.stats.tokenCalls == calls)
            #expect(h.fake.isLiveAccessToken(try #require(cached["access_token"])))
            let instance = try #require(cached["instance_url"])
            let access = try #require(cached["access_token"])
            let data = try await h.http.send(
                .init(
                    method: "GET", url: "\(instance)/services/data/v60.0/",
                    headers: [("Authorization", "Bearer \(access)")]))
            #expect(data.status == 200)
            // expires_at = Salesforce's issued_at + token_ttl_seconds.
            let issuedText = try #require(cached["issued_at"])
            let expiresText = try #require(cached["expires_at"])
            let issued = try #require(ISO8601DateFormatter().date(from: issuedText))
            let expires = try #require(ISO8601DateFormatter().date(from: expiresText))
            #expect(expires.timeIntervalSince(issued) == 3600)
            let metrics = try await h.call("GET", "/metrics", token: nil)
            #expect(metrics.status == 200 && metrics.header("Content-Type")?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains("token_gateway_cache_hits_total 1\n"))
            #expect(metrics.text.contains(#"token_gateway_requests_total{route="/token",status="200"} 1"#))
            #expect(
                metrics.text.contains(
                    #"token_gateway_upstream_requests_total{grant="authorization_code",outcome="success"} 1"#))
            #expect(!metrics.text.contains(try #require(cached["access_token"])))
        }
    }

    @Test func minTTLAtOrAboveTheLifetimeAlwaysFetchesAnew() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(ttl: 600)
            _ = try await h.exchange(key: key)
            let before = h.fake.stats.tokenCalls
            #expect(try await h.token(key: key, extra: #","min_ttl_seconds":500"#)["source"] == "cache")
            #expect(h.fake.stats.tokenCalls == before)
            let fresh = try await h.token(key: key, extra: #","min_ttl_seconds":600"#)
            #expect(fresh.status == 200 && fresh["source"] == "upstream")
            #expect(h.fake.stats.tokenCalls == before + 1)
            #expect(try await h.token(key: key, extra: #","min_ttl_seconds":86401"#).status == 400)
        }
    }

    @Test func forceRefreshWithinTheGraceReturnsTheFreshToken() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS": "2"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            let first = try await h.exchange(key: key)
            let calls = h.fake.stats.tokenCalls
            // A burst of callers whose token was just rejected: one Salesforce call at most, here none (fresh token).
            let burst = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<10 {
                    group.addTask { try await h.token(key: key, extra: #","force_refresh":true"#)["access_token"] }
                }
                return try await group.reduce(into: Set<String?>()) { $0.insert($1) }
            }
            #expect(burst == [first["access_token"]])
            #expect(h.fake.stats.tokenCalls == calls)
            try await Task.sleep(for: .milliseconds(2100))
            let forced = try await h.token(key: key, extra: #","force_refresh":true"#)
            #expect(forced["source"] == "upstream" && forced["access_token"] != first["access_token"])
            #expect(h.fake.stats.tokenCalls == calls + 1)
        }
    }

    @Test func rotationSurvivesTwentyConsecutiveForcedRefreshes() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS": "0"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(rotate: true)
            #expect(try await h.exchange(key: key).status == 200)
            var seen = Set<String>()
            for _ in 0..<20 {
                let reply = try await h.token(key: key, extra: #","force_refresh":true"#)
                #expect(reply.status == 200 && reply["source"] == "upstream", "\(reply.text)")
                seen.insert(try #require(reply["access_token"]))
            }
            #expect(seen.count == 20)
            #expect(h.fake.stats.refreshFamiliesRevoked == 0)
            #expect(h.fake.stats.tokenCallsByGrant["refresh_token"] == 20)
        }
    }

    @Test func concurrentRequestsOnTwoReplicasCauseOneSalesforceCall() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(rotate: true)
            #expect(try await h.exchange(key: key).status == 200)
            let other = try await h.replica()
            h.fake.injectFaults([.latency(milliseconds: 300)])
            let before = h.fake.stats.tokenCalls
            let replies = try await withThrowingTaskGroup(of: GatewayHarness.Reply.self) { group in
                for index in 0..<100 {
                    let replica = index.isMultiple(of: 2) ? h : other
                    group.addTask { try await replica.token(key: key, extra: #","min_ttl_seconds":86400"#) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // min_ttl above the lifetime forces every caller past the memory cache: the lock makes it one call.
            #expect(replies.allSatisfy { $0.status == 200 })
            #expect(Set(replies.compactMap { $0["access_token"] }).count == 1)
            #expect(replies.filter { $0["source"] == "upstream" }.count == 1)
            #expect(h.fake.stats.tokenCalls == before + 1)
            #expect(h.fake.stats.refreshFamiliesRevoked == 0)
            await other.stop(stopFake: false)
        }
    }

    @Test func refusedCodeIsInvalidGrantWithUpstreamDetails() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            let code = h.fake.issueAuthorizationCode(
                clientID: "3MVG9-crm", redirectURI: GatewayHarness.redirect, username: "ops@acme.example")
            #expect(
                try await h.call("POST", "/exchange", token: key, json: #"{"client":"crm","code":"\#(code)"}"#).status
                    == 200)
            let reused = try await h.call("POST", "/exchange", token: key, json: #"{"client":"crm","code":"\#(code)"}"#)
            #expect(reused.status == 400 && reused["error"] == "invalid_grant")
            #expect(reused.json?["upstream"]?["error"] == .string("invalid_grant"))
            #expect(reused.json?["upstream"]?["error_description"] == .string("expired authorization code"))
            let mismatch = try await h.call(
                "POST", "/exchange", token: key,
                json: """
                    {"client":"crm","code":"\(h.fake.issueAuthorizationCode(clientID: "3MVG9-crm", redirectURI: GatewayHarness.redirect, username: "ops@acme.example"))","redirect_uri":"https://elsewhere.example/cb"}
                    """)
            #expect(mismatch.status == 400 && mismatch.json?["upstream"]?["error"] == .string("redirect_uri_mismatch"))
        }
    }

    @Test func revokedRefreshTokenRequiresReauthorizationUntilANewExchange() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS": "0"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            h.fake.revokeAll(username: "ops@acme.example")
            let calls = h.fake.stats.tokenCalls
            let refused = try await h.token(key: key, extra: #","force_refresh":true,"min_ttl_seconds":86400"#)
            #expect(refused.status == 409 && refused["error"] == "reauthorization_required", "\(refused.text)")
            #expect(refused.json?["upstream"]?["error"] == .string("invalid_grant"))
            #expect(
                try await h.call("GET", "/tenants/acme/clients/crm/connections").text.contains(
                    "reauthorization_required"))
            // No further Salesforce call: the refresh token is known dead.
            #expect(try await h.token(key: key).status == 409)
            #expect(h.fake.stats.tokenCalls == calls + 1)
            #expect(try await h.exchange(key: key).status == 200)
            #expect(
                try await h.call("GET", "/tenants/acme/clients/crm/connections").text.contains(#""status":"active""#))
            #expect(try await h.token(key: key).status == 200)
        }
    }

    @Test func upstreamFaultsMapToTheErrorTable() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "1"]) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            let forced = #","min_ttl_seconds":86400"#
            h.fake.injectFaults([.serverError])
            let serverError = try await h.token(key: key, extra: forced)
            #expect(serverError.status == 502 && serverError["error"] == "upstream_error")
            h.fake.injectFaults([.garbage])
            #expect(try await h.token(key: key, extra: forced).status == 502)
            h.fake.injectFaults([.badSignature])
            let badSignature = try await h.token(key: key, extra: forced)
            #expect(badSignature.status == 502 && badSignature["message"]?.contains("signature") == true)
            h.fake.injectFaults([.throttle(retryAfterSeconds: 17)])
            let throttled = try await h.token(key: key, extra: forced)
            #expect(
                throttled.status == 429 && throttled["error"] == "upstream_rate_limited"
                    && throttled.header("Retry-After") == "17")
            h.fake.injectFaults([.rateLimitBody])
            let limited = try await h.token(key: key, extra: forced)
            #expect(limited.status == 429 && limited.header("Retry-After") == "60")
            h.fake.injectFaults([.latency(milliseconds: 2500)])
            let started = ContinuousClock.now
            let slow = try await h.token(key: key, extra: forced)
            #expect(slow.status == 504 && slow["error"] == "upstream_timeout")
            #expect(ContinuousClock.now - started < .seconds(2))
            // After all that, the connection still works: none of these touched the stored refresh token.
            let healthy = try await h.token(key: key, extra: forced)
            #expect(healthy.status == 200 && healthy["source"] == "upstream")
        }
    }

    @Test func jwtBearerAndClientCredentialsGrantsWorkEndToEnd() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            h.fake.addUser("integration@acme.example")
            h.fake.register(
                FakeConnectedApp(
                    clientID: "3MVG9-jwt", clientSecret: "jwt-app-secret", redirectURIs: [],
                    jwtPublicKeyPEM: rsa.publicKey.pemRepresentation, preApprovedUsers: ["integration@acme.example"]))
            let pem = rsa.pemRepresentation.replacingOccurrences(of: "\n", with: "\\n")
            #expect(
                try await h.call(
                    "POST", "/tenants/acme/clients",
                    json: """
                        {"id":"jwt","grant_type":"jwt_bearer","login_url":"\(h.fake.baseURL)","client_id":"3MVG9-jwt","client_secret":"jwt-app-secret",
                         "username":"integration@acme.example","private_key":"\(pem)"}
                        """
                ).status == 201)
            try await h.clientCredentialsClient(runAs: "integration@acme.example")
            let jwt = try await h.token(key: key, client: "jwt")
            #expect(jwt.status == 200 && jwt["source"] == "upstream", "\(jwt.text)")
            #expect(h.fake.isLiveAccessToken(try #require(jwt["access_token"])))
            #expect(try await h.token(key: key, client: "jwt")["source"] == "cache")
            let cc = try await h.token(key: key, client: "cc")
            #expect(cc.status == 200 && cc["source"] == "upstream", "\(cc.text)")
            #expect(try await h.token(key: key, client: "cc", connection: "other").status == 404)

            // A user who is no longer pre-approved: reauthorization required, and the next request tries again.
            h.fake.setUserActive("integration@acme.example", false)
            let inactive = try await h.token(key: key, client: "jwt", extra: #","min_ttl_seconds":86400"#)
            #expect(inactive.status == 409 && inactive["error"] == "reauthorization_required")
            #expect(
                try await h.call("GET", "/tenants/acme/clients/jwt/connections").text.contains(
                    "reauthorization_required"))
            h.fake.setUserActive("integration@acme.example", true)
            let back = try await h.token(key: key, client: "jwt")
            #expect(back.status == 200 && back["source"] == "upstream")
        }
    }

    @Test func exchangeWithoutRefreshScopeWarns() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(scopes: "api web")
            let reply = try await h.exchange(key: key)
            #expect(reply.status == 200)
            guard case .array(let warnings)? = reply.json?["warnings"] else {
                Issue.record("no warnings")
                return
            }
            #expect(warnings.first?.stringValue?.contains("refresh_token") == true)
        }
    }

    @Test func authorizeLinkAndCallbackConnectThroughTheBrowserFlow() async throws {
        try await withCallbackHarness { h in
            let key = try await h.tenantWithKey()
            try await h.browserFlowClient()
            let link = try await h.call("POST", "/tenants/acme/clients/web/authorize", json: #"{"connection":"sales"}"#)
            #expect(link.status == 200, "\(link.text)")
            let url = try #require(link["url"])
            #expect(url.contains("code_challenge_method=S256") && url.contains("redirect_uri=http%3A%2F%2F127.0.0.1"))
            // The "browser": Salesforce approves and redirects to the gateway's callback.
            let approval = try await h.http.send(.init(method: "GET", url: url))
            #expect(approval.status == 302)
            let location = try #require(approval.header("Location"))
            let page = try await h.http.send(.init(method: "GET", url: location))
            let html = String(decoding: page.body, as: UTF8.self)
            #expect(page.status == 200 && html.contains("sales") && html.contains("web"), "\(html)")
            #expect(try await h.token(key: key, client: "web", connection: "sales").status == 200)
            // The state is single-use.
            let again = try await h.http.send(.init(method: "GET", url: location))
            #expect(again.status == 400 && String(decoding: again.body, as: UTF8.self).contains("already used"))
            let unknown = try await h.http.send(.init(method: "GET", url: "\(h.baseURL)/callback?code=x&state=nope"))
            #expect(unknown.status == 400)
            // Salesforce failing during the exchange: the page keeps the 5xx status of the contract's table.
            let second = try await h.call(
                "POST", "/tenants/acme/clients/web/authorize", json: #"{"connection":"other"}"#)
            let redirect = try await h.http.send(.init(method: "GET", url: try #require(second["url"])))
            h.fake.injectFaults([.serverError])
            let failed = try await h.http.send(.init(method: "GET", url: try #require(redirect.header("Location"))))
            #expect(failed.status == 502 && String(decoding: failed.body, as: UTF8.self).contains("authorize link"))
        }
    }

    @Test func databaseOutageServesCachedTokensAndOtherwiseAnswers503() async throws {
        let cluster = try await onThread { try TemporaryPostgres.start() }
        defer { cluster.destroy() }
        let h = try await GatewayHarness.start(databaseURL: cluster.url)
        do {
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            try await onThread { try cluster.stopServer() }
            let cached = try await h.token(key: key)
            #expect(cached.status == 200 && cached["source"] == "cache")
            let forced = try await h.token(key: key, extra: #","min_ttl_seconds":86400"#)
            #expect(forced.status == 200 && forced["source"] == "cache")  // still valid: better than nothing
            let missing = try await h.token(key: key, connection: "other")
            #expect(missing.status == 503 && missing["error"] == "unavailable", "\(missing.text)")
            #expect(try await h.call("GET", "/readyz").status == 503)
            try await onThread { try cluster.startServer() }
            let recovered = try await eventually(within: 10) { try await h.call("GET", "/readyz").status == 200 }
            #expect(recovered)
            #expect(try await h.token(key: key, extra: #","min_ttl_seconds":86400"#)["source"] == "upstream")
        } catch {
            await h.stop()
            throw error
        }
        await h.stop()
    }
}
