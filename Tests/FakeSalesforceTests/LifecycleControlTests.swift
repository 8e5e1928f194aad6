import Foundation
import Testing

@testable import FakeSalesforce

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
