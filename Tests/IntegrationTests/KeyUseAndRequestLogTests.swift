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

/// What the gateway records about requests: key use and token counts in the audit, and log lines that carry the
/// request id and never a secret.
@Suite
struct KeyUseAndRequestLogTests {
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
            try await onThread { try sendThenReset(port: port, Array(request.utf8), after: 0.1) }
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
