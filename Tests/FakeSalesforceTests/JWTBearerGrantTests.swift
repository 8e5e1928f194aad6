import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

@Suite struct JWTBearerGrantTests {
    static let keys = Result { try FakeRSAKeyPair() }
    static let otherKeys = Result { try FakeRSAKeyPair() }

    struct Setup {
        let org = Org()
        let keys: FakeRSAKeyPair
        let app: FakeConnectedApp

        init() throws {
            keys = try JWTBearerGrantTests.keys.get()
            var app = FakeConnectedApp(clientID: "3MVG9jwt", clientSecret: "jwt-secret")
            app.jwtPublicKeyPEM = keys.publicKeyPEM
            app.preApprovedUsers = ["integration@example.com", "alice@example.com"]
            self.app = app
            org.core.register(app)
        }

        func grant(_ assertion: String) -> FakeAnswer {
            org.token([("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)])
        }

        func assertion(
            username: String = "integration@example.com", audience: String = "https://login.salesforce.com",
            lifetime: Double = 180, jwtID: String? = nil, keys: FakeRSAKeyPair? = nil, clientID: String? = nil
        ) throws -> String {
            try (keys ?? self.keys).signAssertion(
                clientID: clientID ?? app.clientID, username: username, audience: audience, lifetimeSeconds: lifetime,
                jwtID: jwtID, now: org.clock.now)
        }
    }

    @Test func validAssertionGetsAnAccessTokenWithoutRefreshToken() throws {
        let setup = try Setup()
        let answer = setup.grant(try setup.assertion())
        #expect(answer.status == 200)
        let body = object(answer)
        let access = try #require(body["access_token"] as? String)
        #expect(setup.org.core.isLiveAccessToken(access))
        #expect(body["refresh_token"] == nil)
        #expect(signatureVerifies(body, secret: setup.app.clientSecret))
        let userID = try #require(setup.org.core.userID(of: "integration@example.com"))
        #expect((body["id"] as? String)?.hasSuffix("/" + userID) == true)
    }

    @Test func audiencesAccepted() throws {
        let setup = try Setup()
        for audience in ["https://test.salesforce.com", Org.base, Org.base + "/"] {
            #expect(setup.grant(try setup.assertion(audience: audience)).status == 200)
        }
        expectOAuthError(
            setup.grant(try setup.assertion(audience: "https://acme.my.salesforce.com")), "invalid_grant",
            "Audience validation failed")
    }

    @Test func signatureMustVerifyWithTheAppsKey() throws {
        let setup = try Setup()
        expectOAuthError(
            setup.grant(try setup.assertion(keys: try JWTBearerGrantTests.otherKeys.get())), "invalid_grant",
            "invalid assertion")
        let good = try setup.assertion()
        let tampered = good.dropLast(4) + (good.hasSuffix("AAAA") ? "BBBB" : "AAAA")
        expectOAuthError(setup.grant(String(tampered)), "invalid_grant", "invalid assertion")
        expectOAuthError(setup.grant("not.a.jwt"), "invalid_grant", "invalid assertion")
    }

    @Test func onlyRS256IsAccepted() throws {
        let setup = try Setup()
        let claims: [String: any Sendable] = [
            "iss": setup.app.clientID, "sub": "integration@example.com", "aud": "https://login.salesforce.com",
            "exp": Int(setup.org.clock.now.timeIntervalSince1970 + 60),
        ]
        let wrongAlg = try setup.keys.signAssertion(claims: claims, header: ["alg": "RS512"])
        expectOAuthError(setup.grant(wrongAlg), "invalid_grant", "invalid assertion")
        #expect(setup.grant(try setup.keys.signAssertion(claims: claims)).status == 200)
    }

    @Test func expiryMustBeInTheFutureAndAtMostThreeMinutesAhead() throws {
        let setup = try Setup()
        expectOAuthError(setup.grant(try setup.assertion(lifetime: -1)), "invalid_grant", "invalid assertion")
        expectOAuthError(setup.grant(try setup.assertion(lifetime: 600)), "invalid_grant", "invalid assertion")
        #expect(setup.grant(try setup.assertion(lifetime: 200)).status == 200)
    }

    @Test func userMustBePreApprovedAndActive() throws {
        let setup = try Setup()
        setup.org.core.addUser("bob@example.com")
        expectOAuthError(
            setup.grant(try setup.assertion(username: "bob@example.com")), "invalid_grant",
            "user hasn't approved this consumer")
        expectOAuthError(
            setup.grant(try setup.assertion(username: "ghost@example.com")), "invalid_grant",
            "user hasn't approved this consumer")
        setup.org.core.setUserActive("integration@example.com", false)
        expectOAuthError(setup.grant(try setup.assertion()), "invalid_grant", "inactive user")
    }

    @Test func unknownIssuerIsAnUnknownClient() throws {
        let setup = try Setup()
        expectOAuthError(
            setup.grant(try setup.assertion(clientID: "3MVG9unknown")), "invalid_client_id",
            "client identifier invalid")
    }

    @Test func appWithoutCertificateRefusesAssertions() throws {
        let setup = try Setup()
        setup.org.core.register(FakeConnectedApp(clientID: "nocert", clientSecret: "x", preApprovedUsers: ["a"]))
        expectOAuthError(
            setup.grant(try setup.assertion(username: "a", clientID: "nocert")), "invalid_grant", "invalid assertion")
    }

    @Test func jwtIDCannotBeReused() throws {
        let setup = try Setup()
        #expect(setup.grant(try setup.assertion(jwtID: "once")).status == 200)
        expectOAuthError(setup.grant(try setup.assertion(jwtID: "once")), "invalid_grant", "invalid assertion")
        #expect(setup.grant(try setup.assertion(jwtID: "twice")).status == 200)
    }
}
