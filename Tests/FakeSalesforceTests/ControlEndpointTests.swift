import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct ControlEndpointTests {
    func control(_ core: FakeSalesforceCore, _ method: String, _ path: String, _ json: String = "") -> FakeAnswer {
        core.answer(
            method: method, path: path, query: "", headers: [("Content-Type", "application/json")],
            body: Array(json.utf8))
    }

    @Test func appsUsersCodesFaultsAndStatsOverControlEndpoints() throws {
        let org = Org()
        let core = org.core
        let keys = try JWTBearerGrantTests.keys.get()
        let pem = keys.publicKeyPEM.replacingOccurrences(of: "\n", with: "\\n")
        let app = control(
            core, "POST", "/__fake/apps",
            """
            {"client_id":"ctl","client_secret":"ctl-secret","redirect_uris":["http://localhost:9/cb"],
             "rotate_refresh_tokens":true,"jwt_public_key_pem":"\(pem)","pre_approved_users":["jwt@example.com"],
             "client_credentials_user":null,"scopes":"api refresh_token"}
            """)
        #expect(app.status == 201)
        let user = control(core, "POST", "/__fake/users", #"{"username":"ctl@example.com","active":true}"#)
        #expect(user.status == 200 && (object(user)["user_id"] as? String)?.hasPrefix("005") == true)
        let codeAnswer = control(
            core, "POST", "/__fake/codes",
            #"{"client_id":"ctl","redirect_uri":"http://localhost:9/cb","username":"ctl@example.com"}"#)
        let code = try #require(object(codeAnswer)["code"] as? String)
        let exchanged = org.token([
            ("grant_type", "authorization_code"), ("code", code), ("client_id", "ctl"),
            ("client_secret", "ctl-secret"), ("redirect_uri", "http://localhost:9/cb"),
        ])
        let refresh = try #require(object(exchanged)["refresh_token"] as? String)
        let rotated = org.token([
            ("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "ctl"),
            ("client_secret", "ctl-secret"),
        ])
        #expect(object(rotated)["refresh_token"] as? String != nil)
        let jwt = try keys.signAssertion(clientID: "ctl", username: "jwt@example.com", now: org.clock.now)
        #expect(
            org.token([("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", jwt)]).status == 200
        )

        let faults = control(
            core, "POST", "/__fake/faults",
            #"{"faults":[{"type":"latency","milliseconds":20},{"type":"server_error"},{"type":"throttle","retry_after_seconds":3},{"type":"rate_limit_body"},{"type":"garbage"},{"type":"bad_signature"}]}"#
        )
        #expect(faults.status == 200 && object(faults)["queued"] as? Int == 6)
        #expect(org.token([("grant_type", "x")]).delay == .milliseconds(20))
        #expect(org.token([("grant_type", "x")]).status == 500)
        #expect(org.token([("grant_type", "x")]).header("Retry-After") == "3")

        let stats = object(control(core, "GET", "/__fake/stats"))
        #expect(stats["token_calls"] as? Int == 6)
        #expect((stats["token_calls_by_grant"] as? [String: Any])?["x"] as? Int == 3)
        #expect(stats["refresh_families_revoked"] as? Int == 0)
    }

    @Test func badControlRequestsAreRefused() {
        let core = Org().core
        #expect(control(core, "POST", "/__fake/apps", "{").status == 400)
        #expect(control(core, "POST", "/__fake/apps", #"{"client_secret":"x"}"#).status == 400)
        #expect(control(core, "POST", "/__fake/apps", #"{"client_id":"a","jwt_public_key_pem":"junk"}"#).status == 400)
        #expect(control(core, "POST", "/__fake/faults", #"{"faults":[{"type":"meteor"}]}"#).status == 400)
        #expect(control(core, "POST", "/__fake/nothing", "{}").status == 400)
        #expect(control(core, "DELETE", "/__fake/stats").status == 404)
    }

    @Test func configurationFilePreloadsTheOrg() throws {
        let configuration = try FakeSalesforceConfiguration(
            json: Array(
                #"""
                {"apps":[{"client_id":"cfg","client_secret":"cfg-secret","client_credentials_user":"svc@example.com"}],
                 "users":[{"username":"off@example.com","active":false}],"authorize_user":"alice@example.com"}
                """#.utf8))
        let org = Org()
        configuration.apply(to: org.core)
        #expect(
            org.token([("grant_type", "client_credentials"), ("client_id", "cfg"), ("client_secret", "cfg-secret")])
                .status == 200)
        #expect(throws: FakeSalesforceConfigurationError.self) {
            try FakeSalesforceConfiguration(json: Array(#"{"apps":[{"client_secret":"x"}]}"#.utf8))
        }
    }
}
