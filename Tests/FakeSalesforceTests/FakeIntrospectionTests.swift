import Foundation
import Testing

@testable import FakeSalesforce

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
