import Foundation
import Testing

@testable import FakeSalesforce

extension Org {
    /// An org whose web-server app has the given session timeout and unused-refresh-token policy.
    static func lifecycle(sessionSeconds: Int = 7200, unusedExpirySeconds: Int? = nil, rotate: Bool = false) -> Org {
        var org = Org(rotate: rotate)
        org.app.sessionTimeoutSeconds = sessionSeconds
        org.app.refreshTokenUnusedExpirySeconds = unusedExpirySeconds
        org.core.register(org.app)
        return org
    }

    /// Exchanges a fresh code: the access token, the refresh token and the whole body.
    func connect() throws -> (access: String, refresh: String, body: [String: Any]) {
        let body = object(exchange(code()))
        return (try #require(body["access_token"] as? String), try #require(body["refresh_token"] as? String), body)
    }

    func introspect(_ token: String?, clientID: String? = nil, secret: String? = nil) -> FakeAnswer {
        var fields = [
            ("client_id", clientID ?? app.clientID), ("client_secret", secret ?? app.clientSecret),
            ("token_type_hint", "access_token"),
        ]
        if let token { fields.insert(("token", token), at: 0) }
        return post("/services/oauth2/introspect", fields)
    }
}

@Suite struct SessionTimeoutTests {
    @Test func accessTokensDieWhenTheAppsSessionTimesOut() throws {
        let org = Org.lifecycle(sessionSeconds: 600)
        let issued = org.clock.now
        let (access, _, body) = try org.connect()
        let identityPath = String(try #require(body["id"] as? String).dropFirst(Org.base.count))
        #expect(org.core.accessTokenExpiry(access) == issued.addingTimeInterval(600))
        org.clock.advance(seconds: 599)
        #expect(org.data(access).status == 200)
        #expect(org.data(access, path: identityPath).status == 200)
        org.clock.advance(seconds: 1)
        let refused = org.data(access)
        #expect(refused.status == 401)
        #expect(
            String(decoding: refused.body, as: UTF8.self)
                == #"[{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]"#)
        #expect(org.data(access, path: identityPath).status == 403)
        #expect(!org.core.isLiveAccessToken(access))
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", access)]), "unsupported_token_type",
            "this token type is not supported")
    }

    @Test func theDefaultSessionLastsTwoHours() throws {
        let org = Org()
        #expect(org.app.sessionTimeoutSeconds == 7200)
        let (access, _, _) = try org.connect()
        org.clock.advance(seconds: 7199)
        #expect(org.data(access).status == 200)
        org.clock.advance(seconds: 1)
        #expect(org.data(access).status == 401)
    }

    @Test func everyGrantsTokensTimeOutAndARefreshGetsAFreshSession() throws {
        let org = Org.lifecycle(sessionSeconds: 60)
        org.core.register(
            FakeConnectedApp(
                clientID: "cc", clientSecret: "cc-secret", clientCredentialsUser: "svc@example.com",
                sessionTimeoutSeconds: 30))
        let (first, refresh, _) = try org.connect()
        let credentials = try #require(
            object(
                org.token([("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "cc-secret")])
            )["access_token"] as? String)
        org.clock.advance(seconds: 30)
        #expect(!org.core.isLiveAccessToken(credentials) && org.core.isLiveAccessToken(first))
        let second = try #require(object(org.refresh(refresh))["access_token"] as? String)
        org.clock.advance(seconds: 30)
        #expect(!org.core.isLiveAccessToken(first))
        #expect(org.data(second).status == 200)
        org.clock.advance(seconds: 30)
        #expect(org.data(second).status == 401)
    }
}

@Suite struct RefreshTokenUnusedExpiryTests {
    @Test func eachRefreshRestartsTheClockAndAnIdleTokenDies() throws {
        let org = Org.lifecycle(unusedExpirySeconds: 3600)
        let (access, refresh, _) = try org.connect()
        org.clock.advance(seconds: 3599)
        #expect(org.refresh(refresh).status == 200)
        org.clock.advance(seconds: 3599)
        let last = try #require(object(org.refresh(refresh))["access_token"] as? String)
        org.clock.advance(seconds: 3600)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        #expect(org.core.stats.refreshTokensExpiredUnused == 2)
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
        // The policy kills the refresh token only; access tokens keep their own session timeout.
        #expect(!org.core.isLiveAccessToken(access) && org.core.isLiveAccessToken(last))
        #expect(object(org.introspect(refresh))["active"] as? Bool == false)
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", refresh)]), "unsupported_token_type",
            "this token type is not supported")
    }

    @Test func aRefusedRefreshIsNoUse() throws {
        let org = Org.lifecycle(unusedExpirySeconds: 100)
        let (_, refresh, _) = try org.connect()
        org.clock.advance(seconds: 60)
        org.core.setUserActive("alice@example.com", false)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "inactive user")
        org.core.setUserActive("alice@example.com", true)
        org.clock.advance(seconds: 40)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
    }

    @Test func withRotationEachNewRefreshTokenStartsItsOwnClock() throws {
        let org = Org.lifecycle(unusedExpirySeconds: 100, rotate: true)
        var (_, refresh, _) = try org.connect()
        for _ in 0..<3 {
            org.clock.advance(seconds: 99)
            refresh = try #require(object(org.refresh(refresh))["refresh_token"] as? String)
        }
        org.clock.advance(seconds: 100)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
    }

    @Test func thePolicyIsJudgedWhenTheTokenIsPresented() throws {
        let org = Org()
        #expect(org.app.refreshTokenUnusedExpirySeconds == nil)
        let (_, refresh, _) = try org.connect()
        org.clock.advance(seconds: 365 * 86400)
        #expect(org.refresh(refresh).status == 200)
        var strict = org.app
        strict.refreshTokenUnusedExpirySeconds = 10
        org.core.register(strict)
        org.clock.advance(seconds: 10)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
    }
}

@Suite struct FakeIntrospectionTests {
    @Test func aLiveAccessTokenAnswersItsClaims() throws {
        let org = Org.lifecycle(sessionSeconds: 900)
        org.clock.advance(seconds: 0.75)
        let issued = Int(org.clock.now.timeIntervalSince1970.rounded(.down))
        let (access, _, token) = try org.connect()
        org.clock.advance(seconds: 100)
        let answer = org.introspect(access)
        #expect(answer.status == 200 && answer.header("Content-Type")?.hasPrefix("application/json") == true)
        let body = object(answer)
        #expect(body["active"] as? Bool == true)
        #expect(body["scope"] as? String == "api web refresh_token")
        #expect(body["client_id"] as? String == org.app.clientID)
        #expect(body["username"] as? String == "alice@example.com")
        #expect(body["sub"] as? String == token["id"] as? String)
        #expect(body["token_type"] as? String == "access_token")
        #expect(body["iat"] as? Int == issued && body["nbf"] as? Int == issued)
        #expect(body["exp"] as? Int == issued + 900)
    }

    @Test func aUsableRefreshTokenIsActiveWithoutExpiry() throws {
        let org = Org()
        let (_, refresh, _) = try org.connect()
        let body = object(org.introspect(refresh))
        #expect(body["active"] as? Bool == true && body["token_type"] as? String == "refresh_token")
        #expect(body["exp"] == nil)
    }

    @Test func expiredRevokedUnknownAndForeignTokensAreInactive() throws {
        let org = Org.lifecycle(sessionSeconds: 60)
        org.core.register(FakeConnectedApp(clientID: "other", clientSecret: "other-secret"))
        let (expiring, refresh, _) = try org.connect()
        let revoked = try #require(object(org.refresh(refresh))["access_token"] as? String)
        #expect(org.post("/services/oauth2/revoke", [("token", revoked)]).status == 200)
        let foreign = try #require(object(org.refresh(refresh))["access_token"] as? String)
        let byOther = org.introspect(foreign, clientID: "other", secret: "other-secret")
        #expect(byOther.status == 200 && String(decoding: byOther.body, as: UTF8.self) == #"{"active":false}"#)
        #expect(object(org.introspect(foreign))["active"] as? Bool == true)
        org.clock.advance(seconds: 60)
        for token in [expiring, revoked, "00Dunknown!AQxyz"] {
            let answer = org.introspect(token)
            #expect(answer.status == 200 && String(decoding: answer.body, as: UTF8.self) == #"{"active":false}"#)
        }
    }

    @Test func theClientMustAuthenticateWithItsSecret() throws {
        let org = Org()
        org.core.register(FakeConnectedApp(clientID: "public", clientSecret: ""))
        let (access, _, _) = try org.connect()
        for answer in [
            org.introspect(access, secret: "wrong"), org.introspect(access, clientID: "nobody"),
            org.introspect(access, clientID: "public", secret: ""),
            org.post("/services/oauth2/introspect", [("token", access), ("client_id", org.app.clientID)]),
        ] {
            #expect(answer.status == 401)
            #expect(object(answer)["error"] as? String == "invalid_client")
            #expect(object(answer)["active"] == nil)
        }
        let basic = Data("\(org.app.clientID):\(org.app.clientSecret)".utf8).base64EncodedString()
        let viaBasic = org.post(
            "/services/oauth2/introspect", [("token", access)], headers: [("Authorization", "Basic " + basic)])
        #expect(viaBasic.status == 200 && object(viaBasic)["active"] as? Bool == true)
    }

    @Test func aMissingTokenOrAnotherMethodIsABadRequest() {
        let org = Org()
        expectOAuthError(org.introspect(nil), "invalid_request", "missing token parameter")
        expectOAuthError(org.introspect(""), "invalid_request", "missing token parameter")
        let get = org.core.answer(
            method: "GET", path: "/services/oauth2/introspect", query: "token=x", headers: [], body: [])
        #expect(get.status == 400 && object(get)["error"] as? String == "invalid_request")
    }

    @Test func introspectionsAreCountedPerClientAndInTotal() throws {
        let org = Org()
        let (access, _, _) = try org.connect()
        _ = org.introspect(access)
        _ = org.introspect(access, secret: "wrong")
        _ = org.introspect(access, clientID: "nobody")
        _ = org.post("/services/oauth2/introspect", [("token", access)])
        let stats = org.core.stats
        #expect(stats.introspectionCalls == 4)
        #expect(stats.introspectionCallsByClient == [org.app.clientID: 2, "nobody": 1, "none": 1])
        #expect(stats.tokenCalls == 1)
    }

    @Test func introspectionFaultsAreConsumedInOrderByIntrospectionsOnly() throws {
        let org = Org()
        let (access, refresh, _) = try org.connect()
        org.core.injectIntrospectionFaults([
            .serverError, .garbage, .throttle(retryAfterSeconds: 5), .throttle(retryAfterSeconds: nil),
            .latency(milliseconds: 300),
        ])
        org.core.injectFaults([.serverError])
        // A token call consumes the token fault, not the introspection ones.
        #expect(org.refresh(refresh).status == 500)
        #expect(org.refresh(refresh).status == 200)
        let serverError = org.introspect(access)
        #expect(serverError.status == 500 && serverError.header("Content-Type")?.hasPrefix("text/html") == true)
        let garbage = org.introspect(access)
        #expect(garbage.status == 200 && Encoding.jsonObject(garbage.body) == nil && !garbage.body.isEmpty)
        let throttled = org.introspect(access)
        #expect(throttled.status == 429 && throttled.header("Retry-After") == "5")
        let throttledBare = org.introspect(access)
        #expect(throttledBare.status == 429 && throttledBare.header("Retry-After") == nil)
        let slow = org.introspect(access)
        #expect(slow.delay == .milliseconds(300) && object(slow)["active"] as? Bool == true)
        let normal = org.introspect(access)
        #expect(normal.delay == nil && object(normal)["active"] as? Bool == true)
        #expect(org.core.stats.introspectionCalls == 6)
    }
}

@Suite struct LifecycleControlTests {
    func control(_ core: FakeSalesforceCore, _ path: String, _ json: String) -> FakeAnswer {
        core.answer(
            method: "POST", path: path, query: "", headers: [("Content-Type", "application/json")],
            body: Array(json.utf8))
    }

    @Test func policiesIntrospectionFaultsAndCountersOverControlEndpoints() throws {
        let org = Org()
        let app = control(
            org.core, "/__fake/apps",
            """
            {"client_id":"\(org.app.clientID)","client_secret":"\(org.app.clientSecret)",
             "redirect_uris":["\(Org.redirect)"],"session_timeout_seconds":120,
             "refresh_token_unused_expiry_seconds":300}
            """)
        #expect(app.status == 201)
        let (access, refresh, _) = try org.connect()
        #expect(object(org.introspect(access))["exp"] as? Int == Int(org.clock.now.timeIntervalSince1970) + 120)
        org.clock.advance(seconds: 300)
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")

        let faults = control(
            org.core, "/__fake/faults",
            #"{"endpoint":"introspect","faults":[{"type":"server_error"},{"type":"latency","milliseconds":40},"#
                + #"{"type":"garbage"},{"type":"throttle","retry_after_seconds":2}]}"#)
        #expect(faults.status == 200 && object(faults)["queued"] as? Int == 4)
        #expect(org.token([("grant_type", "x")]).status == 400)
        #expect(org.introspect(access).status == 500)
        #expect(org.introspect(access).delay == .milliseconds(40))
        #expect(Encoding.jsonObject(org.introspect(access).body) == nil)
        #expect(org.introspect(access).header("Retry-After") == "2")

        let stats = object(org.core.answer(method: "GET", path: "/__fake/stats", query: "", headers: [], body: []))
        #expect(stats["introspection_calls"] as? Int == 5)
        #expect((stats["introspection_calls_by_client"] as? [String: Any])?[org.app.clientID] as? Int == 5)
        #expect(stats["refresh_tokens_expired_unused"] as? Int == 1)
    }

    @Test func nullPolicyMeansTheDefaults() throws {
        let org = Org()
        #expect(
            control(
                org.core, "/__fake/apps",
                """
                {"client_id":"\(org.app.clientID)","client_secret":"\(org.app.clientSecret)",
                 "redirect_uris":["\(Org.redirect)"],"session_timeout_seconds":null,
                 "refresh_token_unused_expiry_seconds":null}
                """
            ).status == 201)
        let (access, _, _) = try org.connect()
        #expect(org.core.accessTokenExpiry(access) == org.clock.now.addingTimeInterval(7200))
    }

    @Test func badPoliciesAndFaultsAreRefused() {
        let core = Org().core
        for body in [
            #"{"client_id":"a","session_timeout_seconds":0}"#, #"{"client_id":"a","session_timeout_seconds":"60"}"#,
            #"{"client_id":"a","session_timeout_seconds":1.5}"#,
            #"{"client_id":"a","refresh_token_unused_expiry_seconds":-1}"#,
        ] {
            #expect(control(core, "/__fake/apps", body).status == 400, "\(body)")
        }
        for body in [
            #"{"endpoint":"introspect","faults":[{"type":"bad_signature"}]}"#,
            #"{"endpoint":"introspect","faults":[{"type":"rate_limit_body"}]}"#,
            #"{"endpoint":"revoke","faults":[]}"#, #"{"endpoint":7,"faults":[]}"#,
        ] {
            #expect(control(core, "/__fake/faults", body).status == 400, "\(body)")
        }
        #expect(core.stats.introspectionCalls == 0)
    }

    @Test func theConfigurationFileCarriesThePolicies() throws {
        let configuration = try FakeSalesforceConfiguration(
            json: Array(
                #"""
                {"apps":[{"client_id":"cfg","client_secret":"s","session_timeout_seconds":45,
                          "refresh_token_unused_expiry_seconds":600}]}
                """#.utf8))
        #expect(configuration.apps.first?.sessionTimeoutSeconds == 45)
        #expect(configuration.apps.first?.refreshTokenUnusedExpirySeconds == 600)
    }
}
