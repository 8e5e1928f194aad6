import Foundation
import Testing

@testable import FakeSalesforce

/// Session timeouts, the unused-refresh-token policy and introspection over real HTTP, with the system clock.
@Suite struct FakeSalesforceLifecycleHTTPTests {
    static let redirect = "http://127.0.0.1:1/callback"

    /// Registers an app through the control endpoint and exchanges a code: access and refresh token.
    static func connect(_ fake: FakeSalesforce, appJSON: String) async throws -> (access: String, refresh: String) {
        let port = fake.port
        let app = try await RawHTTP.json(port: port, "POST", "/__fake/apps", appJSON)
        #expect(app.status == 201)
        let code = fake.issueAuthorizationCode(clientID: "life", redirectURI: redirect, username: "u@example.com")
        let exchange = try await RawHTTP.form(
            port: port, "/services/oauth2/token",
            [
                ("grant_type", "authorization_code"), ("code", code), ("client_id", "life"),
                ("client_secret", "life-secret"), ("redirect_uri", redirect),
            ])
        return (
            try #require(exchange.json["access_token"] as? String),
            try #require(exchange.json["refresh_token"] as? String)
        )
    }

    static func app(_ policies: String) -> String {
        #"{"client_id":"life","client_secret":"life-secret","redirect_uris":["\#(redirect)"],\#(policies)}"#
    }

    static func introspect(_ port: Int, _ token: String, secret: String = "life-secret") async throws -> RawResponse {
        try await RawHTTP.form(
            port: port, "/services/oauth2/introspect",
            [
                ("token", token), ("token_type_hint", "access_token"), ("client_id", "life"),
                ("client_secret", secret),
            ])
    }

    @Test func accessTokensTimeOutOverHTTP() async throws {
        try await withFake { fake in
            let (access, _) = try await Self.connect(fake, appJSON: Self.app(#""session_timeout_seconds":2"#))
            let data = { () async throws -> RawResponse in
                try await RawHTTP.send(
                    port: fake.port, method: "GET", path: "/services/data/v60.0/",
                    headers: [("Authorization", "Bearer " + access)])
            }
            #expect(try await data().status == 200)
            let expiry = try #require(fake.accessTokenExpiry(access))
            try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow) + 0.1))
            let dead = try await data()
            #expect(dead.status == 401)
            #expect(dead.text == #"[{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]"#)
            #expect(try await Self.introspect(fake.port, access).json["active"] as? Bool == false)
        }
    }

    @Test func unusedRefreshTokenDiesOverHTTP() async throws {
        try await withFake { fake in
            let (_, refresh) = try await Self.connect(
                fake, appJSON: Self.app(#""refresh_token_unused_expiry_seconds":2"#))
            let fields = [
                ("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "life"),
                ("client_secret", "life-secret"),
            ]
            #expect(try await RawHTTP.form(port: fake.port, "/services/oauth2/token", fields).status == 200)
            try await Task.sleep(for: .milliseconds(2100))
            let refused = try await RawHTTP.form(port: fake.port, "/services/oauth2/token", fields)
            #expect(refused.status == 400)
            #expect(refused.json["error"] as? String == "invalid_grant")
            #expect(refused.json["error_description"] as? String == "expired access/refresh token")
            let stats = try await RawHTTP.send(port: fake.port, method: "GET", path: "/__fake/stats").json
            #expect(stats["refresh_tokens_expired_unused"] as? Int == 1)
        }
    }

    @Test func introspectionOverHTTP() async throws {
        try await withFake { fake in
            let (access, _) = try await Self.connect(fake, appJSON: Self.app(#""session_timeout_seconds":900"#))
            let live = try await Self.introspect(fake.port, access)
            #expect(live.status == 200 && live.header("Content-Type")?.hasPrefix("application/json") == true)
            let iat = try #require(live.json["iat"] as? Int)
            #expect(live.json["active"] as? Bool == true && live.json["exp"] as? Int == iat + 900)
            #expect(live.json["nbf"] as? Int == iat)
            let expiry = try #require(fake.accessTokenExpiry(access))
            #expect(live.json["exp"] as? Int == Int(expiry.timeIntervalSince1970))
            #expect(live.json["username"] as? String == "u@example.com")

            let wrong = try await Self.introspect(fake.port, access, secret: "nope")
            #expect(wrong.status == 401 && wrong.json["error"] as? String == "invalid_client")

            let revoke = try await RawHTTP.form(port: fake.port, "/services/oauth2/revoke", [("token", access)])
            #expect(revoke.status == 200)
            let revoked = try await Self.introspect(fake.port, access)
            #expect(revoked.status == 200 && revoked.text == #"{"active":false}"#)

            #expect(fake.stats.introspectionCalls == 3)
            #expect(fake.stats.introspectionCallsByClient == ["life": 3])
            let stats = try await RawHTTP.send(port: fake.port, method: "GET", path: "/__fake/stats").json
            #expect(stats["introspection_calls"] as? Int == 3)
            #expect((stats["introspection_calls_by_client"] as? [String: Any])?["life"] as? Int == 3)
        }
    }

    @Test func introspectionFaultsOverHTTP() async throws {
        try await withFake { fake in
            let (access, _) = try await Self.connect(fake, appJSON: Self.app(#""session_timeout_seconds":900"#))
            let queued = try await RawHTTP.json(
                port: fake.port, "POST", "/__fake/faults",
                #"{"endpoint":"introspect","faults":[{"type":"server_error"},{"type":"latency","milliseconds":400},"#
                    + #"{"type":"throttle","retry_after_seconds":9},{"type":"garbage"}]}"#)
            #expect(queued.status == 200)
            let answers = [
                try await Self.introspect(fake.port, access), try await Self.introspect(fake.port, access),
                try await Self.introspect(fake.port, access), try await Self.introspect(fake.port, access),
                try await Self.introspect(fake.port, access),
            ]
            #expect(answers.map(\.status) == [500, 200, 429, 200, 200])
            #expect(answers[0].text.contains("<html>"))
            #expect(answers[1].elapsed >= .milliseconds(400) && answers[1].json["active"] as? Bool == true)
            #expect(answers[2].header("Retry-After") == "9")
            #expect((try? JSONSerialization.jsonObject(with: Data(answers[3].body))) == nil)
            #expect(answers[4].json["active"] as? Bool == true)
            #expect(fake.stats.introspectionCalls == 5)
        }
    }
}
