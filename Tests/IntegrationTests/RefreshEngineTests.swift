import FakeSalesforce
import Foundation
import HTTPClient
import Synchronization
import TestSupport
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// The refresh engine against real PostgreSQL and the fake over HTTP, with two replicas: no database connection is
/// held while Salesforce is called, a sick org costs only its own requests, leases of dead replicas are taken over.
@Suite
struct RefreshEngineTests {
    /// Registers an authorization-code app and client `id` and authorizes `connections` connections of it.
    static func authorizedClient(
        _ h: GatewayHarness, key: String, id: String, connections: Int, rotate: Bool = false
    ) async throws {
        try await h.authorizationCodeClient(id: id, clientID: "3MVG9-\(id)", rotate: rotate)
        // One user per connection: Salesforce keeps at most five approvals of an app per user.
        for index in 0..<connections {
            let user = "u\(index)@acme.example"
            h.fake.addUser(user)
            let code = h.fake.issueAuthorizationCode(
                clientID: "3MVG9-\(id)", redirectURI: GatewayHarness.redirect, username: user)
            let reply = try await h.call(
                "POST", "/exchange", token: key,
                json: #"{"client":"\#(id)","code":"\#(code)","connection":"c\#(index)"}"#)
            #expect(reply.status == 200, "\(reply.text)")
        }
    }

    /// Changes how late the fake answers the app's token calls (the app keeps its tokens).
    static func setLatency(_ h: GatewayHarness, id: String, milliseconds: Int, rotate: Bool = false) {
        var app = FakeConnectedApp(
            clientID: "3MVG9-\(id)", clientSecret: GatewayHarness.secret,
            redirectURIs: [GatewayHarness.redirect, "http://127.0.0.1:1/callback"], rotateRefreshTokens: rotate,
            scopes: "api web refresh_token")
        app.tokenLatencyMilliseconds = milliseconds
        h.fake.register(app)
    }

    static func gauge(_ h: GatewayHarness, _ name: String) async throws -> Double? {
        let text = try await h.call("GET", "/metrics", token: nil).text
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    static func timed<T: Sendable>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
        let started = ContinuousClock.now
        let value = try await body()
        return (value, ContinuousClock.now - started)
    }

    @Test func aHangingOrgCostsOnlyTheRequestsThatNeedIt() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await Self.authorizedClient(h, key: key, id: "sick", connections: 40)
            try await Self.authorizedClient(h, key: key, id: "healthy", connections: 2)
            let other = try await h.replica()
            Self.setLatency(h, id: "sick", milliseconds: 60_000)
            let callsBefore = h.fake.stats.tokenCalls
            let started = ContinuousClock.now
            let sick = Task {
                try await withThrowingTaskGroup(of: (Int, String?, Duration).self) { group in
                    for index in 0..<40 {
                        let replica = index.isMultiple(of: 2) ? h : other
                        group.addTask {
                            let reply = try await replica.token(
                                key: key, client: "sick", connection: "c\(index)", extra: #","min_ttl_seconds":86400"#)
                            return (reply.status, reply["error"], ContinuousClock.now - started)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            // Each replica lets 8 calls of the client reach Salesforce; the other 24 requests wait for a slot.
            #expect(await eventually(within: 3) { h.fake.stats.tokenCalls >= callsBefore + 16 })
            var poolSamples: [Double] = []
            for _ in 0..<3 {
                let (admin, adminTime) = try await Self.timed { try await h.call("GET", "/tenants/acme/clients") }
                #expect(admin.status == 200 && adminTime < .milliseconds(500), "admin read took \(adminTime)")
                let (ready, readyTime) = try await Self.timed { try await other.call("GET", "/readyz", token: nil) }
                #expect(ready.status == 200 && readyTime < .milliseconds(500), "readyz took \(readyTime)")
                let (hit, hitTime) = try await Self.timed {
                    try await h.token(key: key, client: "healthy", connection: "c0")
                }
                #expect(hit.status == 200 && hit["source"] == "cache" && hitTime < .milliseconds(500))
                let (cold, coldTime) = try await Self.timed {
                    try await other.token(
                        key: key, client: "healthy", connection: "c1", extra: #","min_ttl_seconds":86400"#)
                }
                #expect(
                    cold.status == 200 && cold["source"] == "upstream" && coldTime < .seconds(1),
                    "another client's cold token took \(coldTime)")
                for replica in [h, other] {
                    poolSamples.append(try #require(try await Self.gauge(replica, "token_gateway_db_pool_in_use")))
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(poolSamples.allSatisfy { $0 <= 3 }, "pool in use: \(poolSamples)")
            print("hanging org: pool in use samples \(poolSamples)")
            let results = try await sick.value
            // The harness's upstream timeout is 5 s: the calls and the requests waiting for a slot end then.
            #expect(results.allSatisfy { $0.0 == 504 && $0.1 == "upstream_timeout" }, "\(results)")
            #expect(results.allSatisfy { $0.2 >= .seconds(4.5) && $0.2 < .seconds(8) }, "\(results.map(\.2))")
            #expect(h.fake.stats.tokenCalls == callsBefore + 16 + 3, "only the slots and the cold tokens called")
            // Now backed off: at once, with Retry-After, and a token still valid in the database is served.
            let (backedOff, backedOffTime) = try await Self.timed {
                try await h.token(key: key, client: "sick", connection: "c0", extra: #","min_ttl_seconds":86400"#)
            }
            #expect(backedOff.status == 504 && backedOffTime < .milliseconds(500))
            #expect(Int(backedOff.header("Retry-After") ?? "") ?? 0 >= 1)
            let stored = try await h.token(key: key, client: "sick", connection: "c1")
            #expect(stored.status == 200, "a valid token is served while its org is backed off")
            await other.stop(stopFake: false)
        }
    }

    @Test func aColdBurstOfManyConnectionsRunsInParallel() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            let clients = (0..<10).map { "app\($0)" }
            for client in clients { try await Self.authorizedClient(h, key: key, id: client, connections: 15) }
            let other = try await h.replica()
            for client in clients { Self.setLatency(h, id: client, milliseconds: 300) }
            let before = h.fake.stats.tokenCalls
            let (replies, elapsed) = try await Self.timed {
                try await withThrowingTaskGroup(of: GatewayHarness.Reply.self) { group in
                    for (index, client) in clients.enumerated() {
                        for connection in 0..<15 {
                            let replica = (index + connection).isMultiple(of: 2) ? h : other
                            group.addTask {
                                try await replica.token(
                                    key: key, client: client, connection: "c\(connection)",
                                    extra: #","min_ttl_seconds":86400"#)
                            }
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            let failed = replies.filter { $0.status != 200 }.map(\.text)
            #expect(replies.count == 150 && failed.isEmpty, "\(failed)")
            #expect(h.fake.stats.tokenCalls == before + 150)
            #expect(elapsed < .seconds(1.5), "150 cold connections at 300 ms took \(elapsed)")
            print("cold burst: 150 connections at 300 ms latency in \(elapsed)")
            await other.stop(stopFake: false)
        }
    }

    @Test func rotatingRefreshesOnTwoReplicasNeverOverlap() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS": "0"]) { h in
            let key = try await h.tenantWithKey()
            try await Self.authorizedClient(h, key: key, id: "crm", connections: 1, rotate: true)
            Self.setLatency(h, id: "crm", milliseconds: 40, rotate: true)
            let other = try await h.replica()
            let until = ContinuousClock.now + .seconds(6)
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for caller in 0..<8 {
                    let replica = caller.isMultiple(of: 2) ? h : other
                    group.addTask {
                        var seen: [Int] = []
                        while ContinuousClock.now < until {
                            seen.append(
                                try await replica.token(
                                    key: key, connection: "c0", extra: #","force_refresh":true"#
                                ).status)
                        }
                        return seen
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.allSatisfy { $0 == 200 }, "\(Set(statuses))")
            let refreshes = h.fake.stats.tokenCallsByGrant["refresh_token"] ?? 0
            #expect(refreshes >= 20, "the callers kept refreshing (\(refreshes))")
            #expect(h.fake.stats.overlappingRefreshes == 0)
            #expect(h.fake.stats.maxConcurrentRefreshesPerFamily == 1)
            #expect(h.fake.stats.refreshFamiliesRevoked == 0, "the rotation chain never broke")
            let last = try await other.token(key: key, connection: "c0")
            #expect(last.status == 200)
            #expect(h.fake.isLiveAccessToken(try #require(last["access_token"])))
            let next = try await h.token(key: key, connection: "c0", extra: #","force_refresh":true"#)
            #expect(next.status == 200 && next["source"] == "upstream", "the stored refresh token still works")
            await other.stop(stopFake: false)
        }
    }

    @Test func aReplicaKilledMidRefreshIsTakenOverAndTheConnectionStaysActive() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await Self.authorizedClient(h, key: key, id: "crm", connections: 1)
            Self.setLatency(h, id: "crm", milliseconds: 2000)
            let port = try freeLocalPort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandTests.binary)
            process.arguments = ["serve"]
            var environment = GatewayHarness.settings(
                databaseURL: h.databaseURL, keys: h.keysSetting, extra: ["TOKEN_GATEWAY_LISTEN": "127.0.0.1:\(port)"])
            environment["PATH"] = "/usr/bin:/bin"
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            let replica = try HTTPClient(
                configuration: HTTPClientConfiguration(totalTimeout: .seconds(10)), logger: GatewayHarness.logger())
            defer { replica.shutdown() }
            #expect(
                await eventually(within: 20) {
                    (try? await replica.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/readyz")))?
                        .status == 200
                })
            let before = h.fake.stats.tokenCalls
            let doomed = Task {
                try? await replica.send(
                    HTTPClientRequest(
                        method: "POST", url: "http://127.0.0.1:\(port)/token",
                        headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")],
                        body: Array(#"{"client":"crm","connection":"c0","min_ttl_seconds":86400}"#.utf8)))
            }
            #expect(await eventually(within: 5) { h.fake.stats.tokenCalls == before + 1 })
            kill(process.processIdentifier, SIGKILL)
            let killedAt = ContinuousClock.now
            _ = await doomed.value
            Self.setLatency(h, id: "crm", milliseconds: 0)
            let reply = try await h.token(key: key, connection: "c0", extra: #","min_ttl_seconds":86400"#)
            let waited = ContinuousClock.now - killedAt
            print("takeover: the killed replica's connection was served \(waited) after the kill")
            #expect(reply.status == 200 && reply["source"] == "upstream", "\(reply.text)")
            // The lease lasts the upstream timeout (5 s here) plus a 5 s margin: no takeover before it can lapse.
            #expect(waited < .seconds(13), "took over after \(waited)")
            #expect(waited > .seconds(2), "a live lease was not taken over early (\(waited))")
            let listed = try await h.call("GET", "/tenants/acme/clients/crm/connections")
            guard case .array(let connections)? = listed.json?["connections"] else {
                Issue.record("no connections list: \(listed.text)")
                return
            }
            #expect(connections.first?["status"] == .string("active"))
        }
    }
}
