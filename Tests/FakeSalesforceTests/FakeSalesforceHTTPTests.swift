import Foundation
import Logging
import TestSupport
import Testing

@testable import FakeSalesforce

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct FakeSalesforceHTTPTests {
    static let redirect = "http://127.0.0.1:1/callback"

    @Test func baseURLIsLoopbackWithTheBoundPort() async throws {
        try await withFake { fake in
            #expect(fake.port > 0)
            #expect(fake.baseURL == "http://127.0.0.1:\(fake.port)")
        }
    }

    @Test func authorizationCodeFlowOverHTTP() async throws {
        try await withFake { fake in
            let port = fake.port
            fake.register(
                FakeConnectedApp(
                    clientID: "3MVG9http", clientSecret: "http-secret", redirectURIs: [Self.redirect],
                    rotateRefreshTokens: true))
            fake.setAuthorizeUser("alice@example.com")
            let query = [
                ("response_type", "code"), ("client_id", "3MVG9http"), ("redirect_uri", Self.redirect),
                ("state", "xyz"),
            ].map { RawHTTP.escape($0.0) + "=" + RawHTTP.escape($0.1) }.joined(separator: "&")
            let authorize = try await RawHTTP.send(
                port: port, method: "GET", path: "/services/oauth2/authorize?" + query)
            #expect(authorize.status == 302)
            let location = try #require(authorize.header("Location"))
            let items = try #require(URLComponents(string: location)?.queryItems)
            let code = try #require(items.first { $0.name == "code" }?.value)
            #expect(items.first { $0.name == "state" }?.value == "xyz")

            let exchange = try await RawHTTP.form(
                port: port, "/services/oauth2/token",
                [
                    ("grant_type", "authorization_code"), ("code", code), ("client_id", "3MVG9http"),
                    ("client_secret", "http-secret"), ("redirect_uri", Self.redirect),
                ])
            #expect(exchange.status == 200)
            #expect(exchange.header("Content-Type")?.hasPrefix("application/json") == true)
            let body = exchange.json
            #expect(body["instance_url"] as? String == fake.baseURL)
            #expect((body["id"] as? String)?.hasPrefix(fake.baseURL + "/id/00D") == true)
            #expect(signatureVerifies(body, secret: "http-secret"))
            let access = try #require(body["access_token"] as? String)
            let refresh = try #require(body["refresh_token"] as? String)

            let data = try await RawHTTP.send(
                port: port, method: "GET", path: "/services/data/v60.0/",
                headers: [("Authorization", "Bearer " + access)])
            #expect(data.status == 200)

            let refreshed = try await RawHTTP.form(
                port: port, "/services/oauth2/token",
                [
                    ("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "3MVG9http"),
                    ("client_secret", "http-secret"),
                ])
            let rotated = try #require(refreshed.json["refresh_token"] as? String)
            #expect(rotated != refresh)

            let revoke = try await RawHTTP.form(port: port, "/services/oauth2/revoke", [("token", rotated)])
            #expect(revoke.status == 200)
            let dead = try await RawHTTP.send(
                port: port, method: "GET", path: "/services/data/v60.0/",
                headers: [("Authorization", "Bearer " + access)])
            #expect(dead.status == 401)
            #expect(dead.text == #"[{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]"#)
            #expect(fake.stats.tokenCalls == 2 && fake.stats.revokeCalls == 1 && fake.stats.dataCalls == 2)
        }
    }

    @Test func jwtBearerOverHTTP() async throws {
        try await withFake { fake in
            let keys = try JWTBearerGrantTests.keys.get()
            fake.register(
                FakeConnectedApp(
                    clientID: "3MVG9jwt", clientSecret: "jwt-secret", jwtPublicKeyPEM: keys.publicKeyPEM,
                    preApprovedUsers: ["svc@example.com"]))
            for (audience, expected) in [
                (fake.baseURL, 200), ("https://login.salesforce.com", 200), ("https://x", 400),
            ] {
                let assertion = try keys.signAssertion(
                    clientID: "3MVG9jwt", username: "svc@example.com", audience: audience)
                let answer = try await RawHTTP.form(
                    port: fake.port, "/services/oauth2/token",
                    [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)])
                #expect(answer.status == expected)
            }
        }
    }

    @Test func latencyFaultHoldsTheAnswerWithoutBlockingTheServer() async throws {
        try await withFake { fake in
            fake.register(FakeConnectedApp(clientID: "cc", clientSecret: "s", clientCredentialsUser: "svc"))
            // More held answers than the server has worker threads: if a worker slept, they would queue.
            let slowCalls = 2 * HTTPServerConfigurationDefaults.threads + 2
            fake.injectFaults(Array(repeating: .latency(milliseconds: 800), count: slowCalls))
            let fields = [("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "s")]
            let port = fake.port
            async let slow = withThrowingTaskGroup(of: RawResponse.self) { group in
                for _ in 0..<slowCalls {
                    group.addTask { try await RawHTTP.form(port: port, "/services/oauth2/token", fields) }
                }
                return try await group.reduce(into: [RawResponse]()) { $0.append($1) }
            }
            // Once every slow call is held, the server still answers at once.
            let deadline = ContinuousClock.now + .seconds(5)
            while fake.stats.tokenCalls < slowCalls && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let fast = try await RawHTTP.send(port: port, method: "GET", path: "/__fake/stats")
            let slowAnswers = try await slow
            #expect(fast.status == 200)
            #expect(fast.elapsed < .milliseconds(400), "\(fast.elapsed)")
            #expect(slowAnswers.count == slowCalls)
            #expect(slowAnswers.allSatisfy { $0.status == 200 && $0.json["access_token"] != nil })
            #expect(slowAnswers.allSatisfy { $0.elapsed >= .milliseconds(800) })
            // Held in parallel, not one after another on the worker threads.
            #expect(slowAnswers.allSatisfy { $0.elapsed < .milliseconds(1600) }, "\(slowAnswers.map(\.elapsed))")
        }
    }

    @Test func faultsReachTheClientAsHTTP() async throws {
        try await withFake { fake in
            fake.register(FakeConnectedApp(clientID: "cc", clientSecret: "s", clientCredentialsUser: "svc"))
            fake.injectFaults([.serverError, .throttle(retryAfterSeconds: 12), .garbage, .rateLimitBody, .badSignature])
            let fields = [("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "s")]
            var answers: [RawResponse] = []
            for _ in 0..<6 { answers.append(try await RawHTTP.form(port: fake.port, "/services/oauth2/token", fields)) }
            #expect(answers.map(\.status) == [500, 429, 200, 400, 200, 200])
            #expect(answers[0].text.contains("<html>"))
            #expect(answers[1].header("Retry-After") == "12")
            #expect((try? JSONSerialization.jsonObject(with: Data(answers[2].body))) == nil)
            #expect(answers[3].json["error"] as? String == "rate_limit_exceeded")
            #expect(!signatureVerifies(answers[4].json, secret: "s"))
            #expect(signatureVerifies(answers[5].json, secret: "s"))
        }
    }

    @Test func controlEndpointsOverHTTP() async throws {
        try await withFake { fake in
            let port = fake.port
            let app = try await RawHTTP.json(
                port: port, "POST", "/__fake/apps",
                #"{"client_id":"ctl","client_secret":"ctl-secret","redirect_uris":["http://localhost/cb"]}"#)
            #expect(app.status == 201)
            let user = try await RawHTTP.json(port: port, "POST", "/__fake/users", #"{"username":"u@example.com"}"#)
            #expect(user.status == 200)
            let codeAnswer = try await RawHTTP.json(
                port: port, "POST", "/__fake/codes",
                #"{"client_id":"ctl","redirect_uri":"http://localhost/cb","username":"u@example.com"}"#)
            let code = try #require(codeAnswer.json["code"] as? String)
            let faults = try await RawHTTP.json(
                port: port, "POST", "/__fake/faults", #"{"faults":[{"type":"throttle","retry_after_seconds":5}]}"#)
            #expect(faults.status == 200)
            let fields = [
                ("grant_type", "authorization_code"), ("code", code), ("client_id", "ctl"),
                ("client_secret", "ctl-secret"), ("redirect_uri", "http://localhost/cb"),
            ]
            #expect(try await RawHTTP.form(port: port, "/services/oauth2/token", fields).status == 429)
            #expect(try await RawHTTP.form(port: port, "/services/oauth2/token", fields).status == 200)
            let stats = try await RawHTTP.send(port: port, method: "GET", path: "/__fake/stats").json
            #expect(stats["token_calls"] as? Int == 2)
            #expect((stats["token_calls_by_grant"] as? [String: Any])?["authorization_code"] as? Int == 2)
        }
    }

    @Test func concurrentTokenCallsOverHTTPKeepExactCounters() async throws {
        try await withFake { fake in
            fake.register(FakeConnectedApp(clientID: "cc", clientSecret: "s", clientCredentialsUser: "svc"))
            let fields = [("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "s")]
            let workers = 16
            let callsPerWorker = 25
            let port = fake.port
            let tokens = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<workers {
                    group.addTask {
                        var tokens: [String] = []
                        for _ in 0..<callsPerWorker {
                            let answer = try await RawHTTP.form(port: port, "/services/oauth2/token", fields)
                            if let token = answer.json["access_token"] as? String { tokens.append(token) }
                        }
                        return tokens
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            #expect(tokens.count == workers * callsPerWorker)
            #expect(Set(tokens).count == tokens.count)
            #expect(fake.stats.tokenCalls == workers * callsPerWorker)
        }
    }
}
