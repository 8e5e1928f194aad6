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

@Suite
struct MoreTokenTests {
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

    @Test func keyUseIsRecordedInBatchesWithTokenCountsInTheAudit() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            for _ in 0..<3 { #expect(try await h.token(key: key).status == 200) }
            let before = try await h.call("GET", "/tenants/acme/keys")
            #expect(before.text.contains(#""last_used_at":null"#))  // no write per request
            await h.gateway.flushUsage()
            let after = try await h.call("GET", "/tenants/acme/keys")
            #expect(!after.text.contains(#""last_used_at":null"#), "\(after.text)")
            let audit = try await h.call("GET", "/tenants/acme/audit")
            guard case .array(let events)? = audit.json?["events"] else {
                Issue.record("no events")
                return
            }
            let issued = events.first { $0["action"] == .string("token.issued") }
            #expect(issued?["count"] == .number(4))  // the exchange and three tokens
        }
    }

    @Test func logLinesCarryTheRequestIDAndNeverASecret() async throws {
        let lines = LogLines()
        try await withHarness(logger: lines.logger(level: .trace)) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient(rotate: true)
            let exchanged = try await h.exchange(key: key)
            h.fake.injectFaults([.badSignature])
            _ = try await h.token(key: key, extra: #","min_ttl_seconds":86400"#)
            let reply = try await h.call(
                "POST", "/token", token: key, json: #"{"client":"crm"}"#,
                headers: [("X-Request-Id", "trace-me-123")])
            #expect(reply.header("X-Request-Id") == "trace-me-123")
            let logged = lines.all
            #expect(logged.contains { $0.contains(#""request_id":"trace-me-123""#) })
            let requestLines = logged.filter { $0.contains(#""msg":"request""#) }
            #expect(requestLines.count >= 5 && requestLines.allSatisfy { $0.contains(#""request_id":"#) })
            #expect(logged.contains { $0.contains("token fetch failed") && $0.contains(#""request_id":"#) })
            var secrets = [
                GatewayHarness.secret, key, GatewayHarness.adminToken, try #require(exchanged["access_token"]),
            ]
            secrets += h.fake.refreshTokens(clientID: "3MVG9-crm")
            for line in logged { for secret in secrets { #expect(!line.contains(secret)) } }
        }
    }

    @Test func theHTTPServerAndTheGatewayNameTheRequestIDAlike() async throws {
        let lines = LogLines()
        try await withHarness(logger: lines.logger(level: .debug)) { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            // A refresh held back at Salesforce, and a client that resets the connection meanwhile: the gateway
            // logs the request, the HTTP server logs that it ended early.
            h.fake.injectFaults([.latency(milliseconds: 300)])
            let body = #"{"client":"crm","min_ttl_seconds":86400}"#
            let request =
                "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\n"
                + "Content-Type: application/json\r\nX-Request-Id: left-early-1\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            let port = h.gateway.port
            try await offPool { try sendThenReset(port: port, Array(request.utf8), after: 0.1) }
            let ended = await eventually(within: 5) { lines.all.contains { $0.contains("request ended early") } }
            #expect(ended)
            let logged = lines.all
            let about = logged.filter { $0.contains("left-early-1") }
            #expect(about.contains { $0.contains(#""msg":"request""#) }, "\(about)")
            #expect(about.contains { $0.contains(#""msg":"request ended early""#) }, "\(about)")
            #expect(about.allSatisfy { $0.contains(#""request_id":"left-early-1""#) }, "\(about)")
            #expect(!logged.contains { $0.contains("request-id") }, "\(logged)")
        }
    }
}

/// Connects to 127.0.0.1:`port`, writes `bytes`, waits `seconds`, then closes with a reset (SO_LINGER 0), as a
/// client that gives up does.
func sendThenReset(port: Int, _ bytes: [UInt8], after seconds: Double) throws {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw TestSupportError("connect() failed: errno \(errno)") }
    guard write(fd, bytes, bytes.count) == bytes.count else { throw TestSupportError("short write") }
    usleep(UInt32(seconds * 1_000_000))
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
}
