import Foundation
import Logging
import Synchronization
import TestSupport
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

#if canImport(Glibc)
    import Glibc
#endif

/// The findings of the attack run, each pinned: brute force, caching headers, HEAD, NUL bytes and host parsing.
@Suite
struct HardeningTests {
    // MARK: Brute force

    @Test func wrongAdminTokensAreLimitedPerAddressAndLoggedSparingly() async throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "gateway") { label in
            JSONLogHandler(label: label, sink: { line in lines.withLock { $0.append(line) } })
        }
        logger.logLevel = .info
        let h = try await GatewayHarness.start(logger: logger)
        do {
            let key = try await h.tenantWithKey()
            let started = ContinuousClock.now
            var statuses: [Int] = []
            var retryAfter: [String] = []
            for attempt in 0..<300 {
                let reply = try await h.call(
                    "GET", "/tenants", token: "guess-\(attempt)-" + String(repeating: "x", count: 40))
                statuses.append(reply.status)
                if reply.status == 429 {
                    #expect(reply["error"] == "rate_limited")
                    retryAfter.append(reply.header("Retry-After") ?? "none")
                }
            }
            let seconds = (ContinuousClock.now - started).seconds
            #expect(statuses.prefix(10).allSatisfy { $0 == 401 }, "\(statuses.prefix(12))")
            #expect(Set(statuses) == [401, 429])
            // A burst of 10, then one a second.
            let checked = statuses.filter { $0 == 401 }.count
            #expect(checked <= 10 + Int(seconds) + 1, "\(checked) tokens checked in \(seconds) s")
            #expect(retryAfter.allSatisfy { Int($0).map { (1...1).contains($0) } ?? false }, "\(Set(retryAfter))")
            // A valid key is still served on its own route from the limited address.
            #expect(try await h.token(key: key, client: "none").status == 404)

            // Right after a checked guess the bucket is empty: the correct token waits too, then works.
            let drained = try await eventually(within: 3) {
                try await h.call("GET", "/tenants", token: "one-more-" + String(repeating: "y", count: 40)).status
                    == 401
            }
            #expect(drained)
            let waiting = try await h.call("GET", "/tenants")
            #expect(waiting.status == 429 && waiting["error"] == "rate_limited", "\(waiting.text)")
            let wait = try #require(waiting.header("Retry-After").flatMap { Int($0) })
            #expect((1...1).contains(wait))
            try await Task.sleep(for: .seconds(wait))
            #expect(try await h.call("GET", "/tenants").status == 200)

            // At most one refusal line a second per reason, each counting the lines left out.
            let elapsed = (ContinuousClock.now - started).seconds
            let refusals = lines.withLock { $0 }.filter { $0.contains(#""refusal":"#) }
            #expect(refusals.count <= 2 * (Int(elapsed) + 2), "\(refusals.count) lines in \(elapsed) s")
            #expect(refusals.contains { $0.contains(#""refusal":"rate_limited""#) })
            let suppressed = refusals.compactMap { line in
                line.range(of: #""suppressed":""#).map { Int(line[$0.upperBound...].prefix { $0.isNumber }) ?? 0 }
            }
            #expect(suppressed.contains { $0 > 0 }, "\(suppressed)")
            #expect(refusals.allSatisfy { $0.contains(#""peer":"127.0.0.1""#) })
            let requestLines = lines.withLock { $0 }.filter { $0.contains(#""msg":"request""#) }
            #expect(requestLines.count < 50, "\(requestLines.count) request lines")
        } catch {
            await h.stop()
            throw error
        }
        await h.stop()
    }

    @Test func unknownKeyLookupsStayWithinASmallGlobalRate() async throws {
        try await withHarness { h in
            let other = try await h.replica()
            do {
                let port = h.gateway.port
                let before = h.gateway.api.store.keyLookups.load(ordering: .relaxed)
                let started = ContinuousClock.now
                var statuses: [Int: Int] = [:]
                // 30 addresses, each within its own burst of failures: only the global bound can hold the queries.
                for address in 2...31 {
                    for _ in 0..<10 {
                        let guess = KeyRegistry.generate().key
                        let status = try await onThread {
                            try SourceBoundHTTP.status(
                                from: "127.0.0.\(address)", port: port, method: "POST", path: "/token",
                                headers: [("Authorization", "Bearer \(guess)"), ("Content-Type", "application/json")],
                                body: #"{"client":"crm"}"#)
                        }
                        statuses[status, default: 0] += 1
                    }
                }
                let seconds = (ContinuousClock.now - started).seconds
                let lookups = h.gateway.api.store.keyLookups.load(ordering: .relaxed) - before
                let bound = Int(AuthenticationGuard.lookupBurst + AuthenticationGuard.lookupsPerSecond * seconds) + 1
                #expect(lookups <= bound, "\(lookups) lookups for 300 guesses in \(seconds) s")
                #expect(lookups >= Int(AuthenticationGuard.lookupBurst))  // the counter does count
                #expect(statuses[401, default: 0] == lookups && statuses[503, default: 0] == 300 - lookups)
                // A key made on another replica a moment ago still works here within a second.
                let created = try await other.call("POST", "/tenants", json: #"{"id":"beta"}"#)
                #expect(created.status == 201)
                let key = try #require(try await other.call("POST", "/tenants/beta/keys", json: "{}")["key"])
                let admitted = try await eventually(within: 1) {
                    try await h.token(key: key, client: "none").status == 404
                }
                #expect(admitted)
            } catch {
                await other.stop(stopFake: false)
                throw error
            }
            await other.stop(stopFake: false)
        }
    }

    // MARK: Caching and framing headers

    @Test func tokenKeyAndExchangeAnswersAreNeverCached() async throws {
        try await withHarness { h in
            let tenant = try await h.call("POST", "/tenants", json: #"{"id":"acme"}"#)
            #expect(tenant.status == 201)
            let created = try await h.call("POST", "/tenants/acme/keys", json: #"{"name":"billing"}"#)
            #expect(created.status == 201 && created.header("Cache-Control") == "no-store")
            let key = try #require(created["key"])
            let badKeyBody = try await h.call("POST", "/tenants/acme/keys", json: #"{"colour":"red"}"#)
            #expect(badKeyBody.status == 400 && badKeyBody.header("Cache-Control") == "no-store")
            try await h.authorizationCodeClient()
            let exchanged = try await h.exchange(key: key)
            #expect(exchanged.status == 200 && exchanged.header("Cache-Control") == "no-store")
            let token = try await h.token(key: key)
            #expect(token.status == 200 && token.header("Cache-Control") == "no-store")
            for (path, credential) in [("/token", "wrong"), ("/exchange", key)] {
                let refused = try await h.call("POST", path, token: credential, json: #"{"client":"nope"}"#)
                #expect(refused.status >= 400 && refused.header("Cache-Control") == "no-store", "\(path)")
            }
        }
    }

    @Test func callbackPagesForbidFramingAndReferrersAndHeadSpendsNoState() async throws {
        try await withCallbackHarness { h in
            let key = try await h.tenantWithKey()
            try await h.browserFlowClient()
            let link = try await h.call("POST", "/tenants/acme/clients/web/authorize", json: "{}")
            #expect(link.status == 200 && link.header("Cache-Control") == "no-store")
            let approval = try await h.http.send(.init(method: "GET", url: try #require(link["url"])))
            let location = try #require(approval.header("Location"))
            // A mail prefetcher or link scanner: HEAD answers headers and leaves the state unspent.
            let head = try await h.http.send(.init(method: "HEAD", url: location))
            #expect(head.status == 200 && head.body.isEmpty)
            let page = try await h.http.send(.init(method: "GET", url: location))
            let html = String(decoding: page.body, as: UTF8.self)
            #expect(page.status == 200 && html.contains("Connected"), "\(html)")
            #expect(try await h.token(key: key, client: "web").status == 200)
            let unknown = try await h.http.send(.init(method: "GET", url: "\(h.baseURL)/callback?state=nope"))
            for answer in [head, page, unknown] {
                func header(_ name: String) -> String? {
                    answer.headers.first { $0.0.lowercased() == name.lowercased() }?.1
                }
                #expect(header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
                #expect(header("Referrer-Policy") == "no-referrer")
                #expect(header("Cache-Control") == "no-store")
            }
        }
    }

    // MARK: Input

    @Test func stringsHoldingNULAreRefusedAndNothingIsStored() async throws {
        try await withHarness { h in
            let tenant = try await h.call("POST", "/tenants", json: #"{"id":"acme","name":"Acme\u0000 Admin"}"#)
            #expect(tenant.status == 400 && tenant["error"] == "invalid_request", "\(tenant.text)")
            #expect(tenant["message"]?.hasPrefix("name:") == true)
            #expect(try await h.call("GET", "/tenants/acme").status == 404)
            _ = try await h.tenantWithKey()
            let pem = try _RSA.Signing.PrivateKey(keySize: .bits2048).pkcs8PEMRepresentation
            let jwt = try await h.call(
                "POST", "/tenants/acme/clients",
                json: """
                    {"id":"jwt","grant_type":"jwt_bearer","login_url":"\(h.fake.baseURL)","client_id":"3MVG9b",
                     "username":"ops@acme.example\\u0000.evil",
                     "private_key":"\(pem.replacingOccurrences(of: "\n", with: "\\n"))"}
                    """)
            #expect(jwt.status == 400 && jwt["message"]?.hasPrefix("username:") == true, "\(jwt.text)")
            #expect(try await h.call("GET", "/tenants/acme/clients/jwt").status == 404)
            let key = try await h.call("POST", "/tenants/acme/keys", json: #"{"name":"\u0000"}"#)
            #expect(key.status == 400 && key["message"]?.hasPrefix("name:") == true)
            let keys = try await h.call("GET", "/tenants/acme/keys")
            guard case .array(let listed)? = keys.json?["keys"] else {
                Issue.record("no keys list: \(keys.text)")
                return
            }
            #expect(listed.count == 1)  // only tenantWithKey's
        }
    }

    @Test func loginURLWhoseHostHidesAnotherHostIsRefused() async throws {
        // The default allow-list: read as host "evil.com:1.salesforce.com" this matched *.salesforce.com.
        try await withHarness(extra: ["TOKEN_GATEWAY_UPSTREAM_ALLOWLIST": ""]) { h in
            #expect(try await h.call("POST", "/tenants", json: #"{"id":"acme"}"#).status == 201)
            for (url, hint) in [
                ("https://evil.com:1.salesforce.com:443", "has a host"),
                ("https://ops:pw@acme.my.salesforce.com", "carries a user name or password"),
                ("https://acme.my.salesforce.com:70000", "has a port"),
            ] {
                let reply = try await h.call(
                    "POST", "/tenants/acme/clients",
                    json: """
                        {"id":"cc","grant_type":"client_credentials","login_url":"\(url)",
                         "client_id":"3MVG9","client_secret":"s"}
                        """)
                #expect(
                    reply.status == 400 && reply["message"]?.hasPrefix("login_url: \(hint)") == true, "\(reply.text)")
                #expect(reply["message"]?.contains("query") == false)
            }
            #expect(try await h.call("GET", "/tenants/acme/clients/cc").status == 404)
        }
    }
}

/// One HTTP/1.1 request over a socket bound to a chosen loopback source address (Linux routes all of 127.0.0.0/8
/// to `lo`), so a test can play many clients. Blocking: call it through `onThread`.
enum SourceBoundHTTP {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func status(
        from source: String, port: Int, method: String, path: String, headers: [(String, String)], body: String
    ) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func address(_ host: String, _ port: Int) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr(host)
            return address
        }
        for (target, isBind) in [(address(source, 0), true), (address("127.0.0.1", port), false)] {
            var target = target
            let result = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    isBind
                        ? bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        : connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard result == 0 else { throw Failure(description: "\(isBind ? "bind" : "connect") failed: \(errno)") }
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let request = Array((head + "Content-Length: \(body.utf8.count)\r\n\r\n" + body).utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw Failure(description: "write failed") }
            sent += count
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else { throw Failure(description: "read failed or timed out (errno \(errno))") }
            received += buffer[0..<count]
        }
        let statusLine = String(decoding: received.prefix(32), as: UTF8.self).split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw Failure(description: "no status line in \(received.count) bytes")
        }
        return status
    }
}
