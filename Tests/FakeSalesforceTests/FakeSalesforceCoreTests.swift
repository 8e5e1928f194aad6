import Crypto
import Foundation
import Logging
import Synchronization
import Testing

@testable import FakeSalesforce

/// A clock the tests move by hand.
final class TestClock: Sendable {
    private let date = Mutex(Date())
    var now: Date { date.withLock { $0 } }
    func advance(seconds: TimeInterval) { date.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A fake org with one web-server app and one user, called directly (no HTTP).
struct Org {
    static let base = "http://127.0.0.1:4999"
    static let redirect = "https://gateway.example/callback"
    let clock = TestClock()
    let core: FakeSalesforceCore
    var app = FakeConnectedApp(
        clientID: "3MVG9webapp", clientSecret: "s3cr3t-webapp", redirectURIs: [Org.redirect, "http://localhost/cb"])

    init(rotate: Bool = false, scopes: String = "api web refresh_token") {
        let clock = self.clock
        core = FakeSalesforceCore(baseURL: Self.base, logger: Logger(label: "test"), now: { clock.now })
        app.rotateRefreshTokens = rotate
        app.scopes = scopes
        core.register(app)
        core.addUser("alice@example.com")
    }

    func post(_ path: String, _ fields: [(String, String)], headers: [(String, String)] = []) -> FakeAnswer {
        core.answer(
            method: "POST", path: path, query: "",
            headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers,
            body: Array(Encoding.formBody(fields).utf8))
    }

    func token(_ fields: [(String, String)]) -> FakeAnswer { post("/services/oauth2/token", fields) }

    func code(username: String = "alice@example.com", challenge: String? = nil) -> String {
        core.issueAuthorizationCode(
            clientID: app.clientID, redirectURI: Org.redirect, username: username, codeChallenge: challenge)
    }

    func exchange(_ code: String, redirect: String = Org.redirect, secret: String? = nil, verifier: String? = nil)
        -> FakeAnswer
    {
        var fields = [
            ("grant_type", "authorization_code"), ("code", code), ("client_id", app.clientID),
            ("client_secret", secret ?? app.clientSecret), ("redirect_uri", redirect),
        ]
        if let verifier { fields.append(("code_verifier", verifier)) }
        return token(fields)
    }

    func refresh(_ refreshToken: String) -> FakeAnswer {
        token([
            ("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", app.clientID),
            ("client_secret", app.clientSecret),
        ])
    }

    func data(_ accessToken: String?, path: String = "/services/data/v60.0/") -> FakeAnswer {
        core.answer(
            method: "GET", path: path, query: "",
            headers: accessToken.map { [("Authorization", "Bearer " + $0)] } ?? [], body: [])
    }
}

func object(_ answer: FakeAnswer) -> [String: Any] {
    Encoding.jsonObject(answer.body) ?? [:]
}

func expectOAuthError(
    _ answer: FakeAnswer, _ error: String, _ description: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(answer.status == 400, sourceLocation: sourceLocation)
    let body = object(answer)
    #expect(body["error"] as? String == error, sourceLocation: sourceLocation)
    #expect(body["error_description"] as? String == description, sourceLocation: sourceLocation)
}

/// Recomputes Salesforce's signature independently: Base64(HMAC-SHA256(secret, id + issued_at)).
func signatureVerifies(_ body: [String: Any], secret: String) -> Bool {
    guard let id = body["id"] as? String, let issuedAt = body["issued_at"] as? String,
        let signature = body["signature"] as? String, let mac = Data(base64Encoded: signature)
    else { return false }
    return HMAC<SHA256>.isValidAuthenticationCode(
        mac, authenticating: Data((id + issuedAt).utf8), using: SymmetricKey(data: Data(secret.utf8)))
}

func pkceChallenge(_ verifier: String) -> String {
    Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

@Suite struct AuthorizationCodeGrantTests {
    @Test func codeExchangeAnswersLikeSalesforce() throws {
        let org = Org()
        let code = org.code()
        #expect(code.contains(".") && code.hasSuffix("=="))
        let answer = org.exchange(code)
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type")?.hasPrefix("application/json") == true)
        let body = object(answer)
        let access = try #require(body["access_token"] as? String)
        #expect(access.hasPrefix(org.core.orgID + "!AQ") && access.count > 100)
        #expect((body["refresh_token"] as? String)?.hasPrefix("5Aep861") == true)
        #expect(body["token_type"] as? String == "Bearer")
        #expect(body["scope"] as? String == "api web refresh_token")
        #expect(body["instance_url"] as? String == Org.base)
        let userID = try #require(org.core.userID(of: "alice@example.com"))
        #expect(body["id"] as? String == "\(Org.base)/id/\(org.core.orgID)/\(userID)")
        let issuedAt = try #require(body["issued_at"] as? String)
        #expect(issuedAt.count == 13 && Int64(issuedAt) == FakeSalesforceState.milliseconds(org.clock.now))
        #expect(body["expires_in"] == nil)
        #expect(signatureVerifies(body, secret: org.app.clientSecret))
        #expect(!signatureVerifies(body, secret: "another secret"))
        #expect(org.core.isLiveAccessToken(access))
    }

    @Test func accessTokensAreRandom() {
        let org = Org()
        let first = object(org.exchange(org.code()))["access_token"] as? String
        let second = object(org.exchange(org.code()))["access_token"] as? String
        #expect(first != nil && second != nil && first != second)
    }

    @Test func codeIsSingleUse() {
        let org = Org()
        let code = org.code()
        #expect(org.exchange(code).status == 200)
        expectOAuthError(org.exchange(code), "invalid_grant", "expired authorization code")
    }

    @Test func unknownCodeIsInvalid() {
        let org = Org()
        expectOAuthError(org.exchange("aPrxnotacode.x=="), "invalid_grant", "invalid authorization code")
    }

    @Test func codeOfAnotherClientIsInvalid() {
        let org = Org()
        org.core.register(FakeConnectedApp(clientID: "other", clientSecret: "x", redirectURIs: [Org.redirect]))
        let code = org.core.issueAuthorizationCode(
            clientID: "other", redirectURI: Org.redirect, username: "alice@example.com")
        expectOAuthError(org.exchange(code), "invalid_grant", "invalid authorization code")
    }

    @Test func codeExpiresAfterFifteenMinutes() {
        let org = Org()
        let code = org.code()
        org.clock.advance(seconds: 15 * 60 + 1)
        expectOAuthError(org.exchange(code), "invalid_grant", "expired authorization code")
    }

    @Test func redirectURIMustEqualTheBoundOne() {
        let org = Org()
        let code = org.code()
        expectOAuthError(
            org.exchange(code, redirect: "http://localhost/cb"), "redirect_uri_mismatch",
            "redirect_uri must match configuration")
        // A refused exchange does not spend the code.
        #expect(org.exchange(code).status == 200)
    }

    @Test func clientIsAuthenticated() {
        let org = Org()
        expectOAuthError(org.exchange(org.code(), secret: "wrong"), "invalid_client", "invalid client credentials")
        expectOAuthError(
            org.token([
                ("grant_type", "authorization_code"), ("code", org.code()), ("client_id", "nobody"),
                ("client_secret", "x"), ("redirect_uri", Org.redirect),
            ]), "invalid_client_id", "client identifier invalid")
    }

    @Test func clientMayAuthenticateWithHTTPBasic() {
        let org = Org()
        let basic = Data("\(org.app.clientID):\(org.app.clientSecret)".utf8).base64EncodedString()
        let answer = org.post(
            "/services/oauth2/token",
            [("grant_type", "authorization_code"), ("code", org.code()), ("redirect_uri", Org.redirect)],
            headers: [("Authorization", "Basic " + basic)])
        #expect(answer.status == 200)
    }

    @Test func pkceVerifierIsChecked() {
        let org = Org()
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        let code = org.code(challenge: pkceChallenge(verifier))
        expectOAuthError(org.exchange(code), "invalid_grant", "invalid code verifier")
        expectOAuthError(org.exchange(code, verifier: "wrong-verifier"), "invalid_grant", "invalid code verifier")
        #expect(org.exchange(code, verifier: verifier).status == 200)
    }

    @Test func inactiveUserGetsNoTokens() {
        let org = Org()
        let code = org.code()
        org.core.setUserActive("alice@example.com", false)
        expectOAuthError(org.exchange(code), "invalid_grant", "inactive user")
    }

    @Test func noRefreshTokenWithoutRefreshScope() {
        let org = Org(scopes: "api web")
        let body = object(org.exchange(org.code()))
        #expect(body["access_token"] != nil)
        #expect(body["refresh_token"] == nil)
        let offline = Org(scopes: "api offline_access")
        #expect(object(offline.exchange(offline.code()))["refresh_token"] != nil)
    }

    @Test func sixthApprovalRevokesTheOldestRefreshToken() throws {
        let org = Org()
        var refreshTokens: [String] = []
        for _ in 0..<6 {
            refreshTokens.append(try #require(object(org.exchange(org.code()))["refresh_token"] as? String))
        }
        expectOAuthError(org.refresh(refreshTokens[0]), "invalid_grant", "expired access/refresh token")
        for token in refreshTokens.dropFirst() { #expect(org.refresh(token).status == 200) }
    }
}

@Suite struct RefreshGrantTests {
    @Test func withoutRotationTheRefreshTokenStaysAndIsNotReturned() throws {
        let org = Org()
        let first = object(org.exchange(org.code()))
        let refresh = try #require(first["refresh_token"] as? String)
        let oldAccess = try #require(first["access_token"] as? String)
        for _ in 0..<3 {
            let answer = org.refresh(refresh)
            #expect(answer.status == 200)
            let body = object(answer)
            #expect(body["refresh_token"] == nil)
            #expect(signatureVerifies(body, secret: org.app.clientSecret))
            let access = try #require(body["access_token"] as? String)
            #expect(access != oldAccess && org.core.isLiveAccessToken(access))
        }
        #expect(org.core.isLiveAccessToken(oldAccess))
    }

    @Test func withRotationEachRefreshReplacesTheToken() throws {
        let org = Org(rotate: true)
        var refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        var issued = [refresh]
        for _ in 0..<3 {
            let body = object(org.refresh(refresh))
            let next = try #require(body["refresh_token"] as? String)
            #expect(next != refresh)
            refresh = next
            issued.append(next)
        }
        #expect(org.refresh(refresh).status == 200)
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
        #expect(Array(org.core.refreshTokens(clientID: org.app.clientID).prefix(4)) == issued)
        #expect(org.core.refreshTokens(clientID: org.app.clientID).count == 5)
        #expect(org.core.refreshTokens(clientID: "nobody").isEmpty)
    }

    @Test func reusingARotatedOutTokenRevokesTheWholeFamily() throws {
        let org = Org(rotate: true)
        let first = object(org.exchange(org.code()))
        let original = try #require(first["refresh_token"] as? String)
        let firstAccess = try #require(first["access_token"] as? String)
        let second = object(org.refresh(original))
        let current = try #require(second["refresh_token"] as? String)
        let secondAccess = try #require(second["access_token"] as? String)

        expectOAuthError(org.refresh(original), "invalid_grant", "expired access/refresh token")
        expectOAuthError(org.refresh(current), "invalid_grant", "expired access/refresh token")
        #expect(!org.core.isLiveAccessToken(firstAccess))
        #expect(!org.core.isLiveAccessToken(secondAccess))
        #expect(org.data(secondAccess).status == 401)
        #expect(org.core.stats.refreshFamiliesRevoked == 1)
    }

    @Test func concurrentRefreshesOfOneRotatingTokenLoseTheFamily() async throws {
        let org = Org(rotate: true)
        let refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { org.refresh(refresh).status } }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 200 }.count == 1)
        #expect(statuses.filter { $0 == 400 }.count == 7)
        #expect(org.core.stats.refreshFamiliesRevoked == 1)
    }

    @Test func unknownRefreshTokenIsRefused() {
        let org = Org()
        expectOAuthError(org.refresh("5Aep861nope"), "invalid_grant", "expired access/refresh token")
    }

    @Test func refreshTokenOfAnotherClientIsRefused() throws {
        let org = Org()
        let refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        org.core.register(FakeConnectedApp(clientID: "other", clientSecret: "x"))
        expectOAuthError(
            org.token([
                ("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "other"),
                ("client_secret", "x"),
            ]), "invalid_grant", "expired access/refresh token")
    }

    @Test func revokeAllKillsEveryTokenOfTheUser() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let refresh = try #require(body["refresh_token"] as? String)
        let access = try #require(body["access_token"] as? String)
        org.core.revokeAll(username: "alice@example.com")
        #expect(!org.core.isLiveAccessToken(access))
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
    }
}

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

@Suite struct ClientCredentialsAndErrorsTests {
    @Test func clientCredentialsRunsAsTheConfiguredUser() throws {
        let org = Org()
        var app = FakeConnectedApp(clientID: "3MVG9cc", clientSecret: "cc-secret")
        app.clientCredentialsUser = "runas@example.com"
        org.core.register(app)
        let fields = [("grant_type", "client_credentials"), ("client_id", "3MVG9cc"), ("client_secret", "cc-secret")]
        let answer = org.token(fields)
        #expect(answer.status == 200)
        let body = object(answer)
        #expect(body["refresh_token"] == nil)
        #expect(signatureVerifies(body, secret: "cc-secret"))
        #expect((body["id"] as? String)?.hasSuffix(try #require(org.core.userID(of: "runas@example.com"))) == true)
        expectOAuthError(
            org.token([("grant_type", "client_credentials"), ("client_id", "3MVG9cc"), ("client_secret", "nope")]),
            "invalid_client", "invalid client credentials")
        org.core.setUserActive("runas@example.com", false)
        expectOAuthError(org.token(fields), "invalid_grant", "inactive user")
    }

    @Test func clientCredentialsWithoutRunAsUserIsRefused() {
        let org = Org()
        expectOAuthError(
            org.token([
                ("grant_type", "client_credentials"), ("client_id", org.app.clientID),
                ("client_secret", org.app.clientSecret),
            ]), "invalid_grant", "request not supported on this domain")
    }

    @Test func unknownGrantTypeIsUnsupported() {
        let org = Org()
        expectOAuthError(org.token([("grant_type", "password")]), "unsupported_grant_type", "grant type not supported")
        expectOAuthError(org.token([]), "unsupported_grant_type", "grant type not supported")
    }

    @Test func onlyFormBodiesArePosted() {
        let org = Org()
        let json = org.core.answer(
            method: "POST", path: "/services/oauth2/token", query: "",
            headers: [("Content-Type", "application/json")], body: Array(#"{"grant_type":"refresh_token"}"#.utf8))
        #expect(json.status == 400 && object(json)["error"] as? String == "invalid_request")
        let get = org.core.answer(
            method: "GET", path: "/services/oauth2/token", query: "grant_type=client_credentials", headers: [],
            body: [])
        #expect(get.status == 400 && object(get)["error"] as? String == "invalid_request")
        let charset = org.core.answer(
            method: "POST", path: "/services/oauth2/token", query: "",
            headers: [("content-type", "application/x-www-form-urlencoded; charset=UTF-8")],
            body: Array("grant_type=password".utf8))
        expectOAuthError(charset, "unsupported_grant_type", "grant type not supported")
        #expect(org.core.stats.tokenCalls == 3)
        #expect(org.core.stats.tokenCallsByGrant == ["none": 2, "password": 1])
    }
}

@Suite struct FaultTests {
    func clientCredentialsOrg() -> (Org, [(String, String)]) {
        let org = Org()
        org.core.register(
            FakeConnectedApp(clientID: "cc", clientSecret: "cc-secret", clientCredentialsUser: "runas@example.com"))
        return (org, [("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "cc-secret")])
    }

    @Test func faultsAreConsumedOnePerTokenCallInOrder() throws {
        let (org, fields) = clientCredentialsOrg()
        org.core.injectFaults([
            .serverError, .garbage, .throttle(retryAfterSeconds: 7), .throttle(retryAfterSeconds: nil),
            .rateLimitBody, .badSignature, .latency(milliseconds: 250),
        ])
        // Calls elsewhere do not consume faults.
        #expect(org.data(nil).status == 401)

        let serverError = org.token(fields)
        #expect(serverError.status == 500)
        #expect(serverError.header("Content-Type")?.hasPrefix("text/html") == true)
        #expect(Encoding.jsonObject(serverError.body) == nil)

        let garbage = org.token(fields)
        #expect(garbage.status == 200 && !garbage.body.isEmpty)
        #expect((try? JSONSerialization.jsonObject(with: Data(garbage.body))) == nil)

        let throttled = org.token(fields)
        #expect(throttled.status == 429 && throttled.header("Retry-After") == "7")
        let throttledBare = org.token(fields)
        #expect(throttledBare.status == 429 && throttledBare.header("Retry-After") == nil)

        let rateLimited = org.token(fields)
        #expect(rateLimited.status == 400)
        #expect(object(rateLimited)["error"] as? String == "rate_limit_exceeded")
        #expect((object(rateLimited)["error_description"] as? String)?.contains("LOGIN_RATE_EXCEEDED") == true)

        let badSignature = org.token(fields)
        #expect(badSignature.status == 200)
        #expect(!signatureVerifies(object(badSignature), secret: "cc-secret"))
        #expect(org.core.isLiveAccessToken(try #require(object(badSignature)["access_token"] as? String)))

        let slow = org.token(fields)
        #expect(slow.status == 200 && slow.delay == .milliseconds(250))
        #expect(signatureVerifies(object(slow), secret: "cc-secret"))

        let normal = org.token(fields)
        #expect(normal.status == 200 && normal.delay == nil)
        #expect(signatureVerifies(object(normal), secret: "cc-secret"))
        #expect(org.core.stats.tokenCalls == 8)
        #expect(org.core.stats.tokenCallsByGrant == ["client_credentials": 8])
    }

    @Test func faultedCallsChangeNothing() throws {
        let org = Org(rotate: true)
        let refresh = try #require(object(org.exchange(org.code()))["refresh_token"] as? String)
        org.core.injectFaults([.serverError, .garbage, .throttle(retryAfterSeconds: 1), .rateLimitBody])
        let faulted = (0..<4).map { _ in org.refresh(refresh) }
        #expect(faulted.map(\.status) == [500, 200, 429, 400])
        #expect(faulted.allSatisfy { object($0)["access_token"] == nil })
        // The refresh token was never rotated by the faulted calls.
        #expect(org.refresh(refresh).status == 200)
        #expect(org.core.stats.refreshFamiliesRevoked == 0)
    }
}

@Suite struct RevokeDataAuthorizeTests {
    @Test func revokingARefreshTokenRevokesItsAccessTokens() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let refresh = try #require(body["refresh_token"] as? String)
        let access1 = try #require(body["access_token"] as? String)
        let access2 = try #require(object(org.refresh(refresh))["access_token"] as? String)
        #expect(org.post("/services/oauth2/revoke", [("token", refresh)]).status == 200)
        #expect(!org.core.isLiveAccessToken(access1) && !org.core.isLiveAccessToken(access2))
        expectOAuthError(org.refresh(refresh), "invalid_grant", "expired access/refresh token")
        // Revoking what is no longer live answers as Salesforce does for an invalid token.
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", refresh)]), "unsupported_token_type",
            "this token type is not supported")
        #expect(org.core.stats.revokeCalls == 2)
    }

    @Test func revokingAnAccessTokenRevokesOnlyIt() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let refresh = try #require(body["refresh_token"] as? String)
        let access = try #require(body["access_token"] as? String)
        let other = try #require(object(org.refresh(refresh))["access_token"] as? String)
        let revoke = org.core.answer(
            method: "GET", path: "/services/oauth2/revoke", query: "token=" + Encoding.percentEncode(access),
            headers: [], body: [])
        #expect(revoke.status == 200)
        #expect(!org.core.isLiveAccessToken(access) && org.core.isLiveAccessToken(other))
        #expect(org.refresh(refresh).status == 200)
        expectOAuthError(
            org.post("/services/oauth2/revoke", [("token", "unknown")]), "unsupported_token_type",
            "this token type is not supported")
    }

    @Test func dataEndpointAcceptsOnlyLiveTokens() throws {
        let org = Org()
        let access = try #require(object(org.exchange(org.code()))["access_token"] as? String)
        let ok = org.data(access)
        #expect(ok.status == 200 && object(ok)["sobjects"] as? String == "/services/data/v60.0/sobjects")
        #expect(org.data(access, path: "/services/data/v60.0/query").status == 200)
        for token in [nil, "00Dbogus!AQxyz"] {
            let refused = org.data(token)
            #expect(refused.status == 401)
            #expect(
                String(decoding: refused.body, as: UTF8.self)
                    == #"[{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}]"#)
        }
        #expect(org.post("/services/oauth2/revoke", [("token", access)]).status == 200)
        #expect(org.data(access).status == 401)
        #expect(org.core.stats.dataCalls == 5)
    }

    @Test func identityURLAnswersForLiveTokens() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let access = try #require(body["access_token"] as? String)
        let id = try #require(body["id"] as? String)
        let path = String(id.dropFirst(Org.base.count))
        let answer = org.data(access, path: path)
        #expect(answer.status == 200 && object(answer)["username"] as? String == "alice@example.com")
        #expect(org.data(nil, path: path).status == 403)
    }

    @Test func introspectionReportsLiveTokens() throws {
        let org = Org()
        let body = object(org.exchange(org.code()))
        let access = try #require(body["access_token"] as? String)
        let credentials = [("client_id", org.app.clientID), ("client_secret", org.app.clientSecret)]
        let live = object(org.post("/services/oauth2/introspect", [("token", access)] + credentials))
        #expect(live["active"] as? Bool == true && live["username"] as? String == "alice@example.com")
        #expect(live["token_type"] as? String == "access_token")
        _ = org.post("/services/oauth2/revoke", [("token", access)])
        let dead = object(org.post("/services/oauth2/introspect", [("token", access)] + credentials))
        #expect(dead["active"] as? Bool == false)
    }

    func authorize(_ org: Org, _ query: [(String, String)]) -> FakeAnswer {
        org.core.answer(
            method: "GET", path: "/services/oauth2/authorize", query: Encoding.formBody(query), headers: [], body: [])
    }

    @Test func authorizeRedirectsWithAPercentEncodedCodeAndTheState() throws {
        let org = Org()
        org.core.setAuthorizeUser("alice@example.com")
        let verifier = "verifier-0123456789-0123456789-0123456789-0123"
        let answer = authorize(
            org,
            [
                ("response_type", "code"), ("client_id", org.app.clientID), ("redirect_uri", Org.redirect),
                ("state", "st ate/1"), ("code_challenge", pkceChallenge(verifier)),
                ("code_challenge_method", "S256"), ("scope", "api refresh_token"),
            ])
        #expect(answer.status == 302)
        let location = try #require(answer.header("Location"))
        #expect(location.hasPrefix(Org.redirect + "?code=aPrx"))
        #expect(location.contains("%3D%3D&state=st%20ate%2F1"))
        let components = try #require(URLComponents(string: location))
        let code = try #require(components.queryItems?.first { $0.name == "code" }?.value)
        #expect(components.queryItems?.first { $0.name == "state" }?.value == "st ate/1")
        #expect(code.hasSuffix("=="))
        expectOAuthError(org.exchange(code), "invalid_grant", "invalid code verifier")
        #expect(org.exchange(code, verifier: verifier).status == 200)
    }

    @Test func authorizeShowsAnErrorPageForUnknownClientOrRedirect() {
        let org = Org()
        org.core.setAuthorizeUser("alice@example.com")
        let unknown = authorize(
            org, [("response_type", "code"), ("client_id", "nobody"), ("redirect_uri", Org.redirect)])
        #expect(unknown.status == 400 && unknown.header("Location") == nil)
        #expect(String(decoding: unknown.body, as: UTF8.self).contains("invalid_client_id"))
        let badRedirect = authorize(
            org, [("response_type", "code"), ("client_id", org.app.clientID), ("redirect_uri", "https://evil/cb")])
        #expect(badRedirect.status == 400 && badRedirect.header("Location") == nil)
        #expect(String(decoding: badRedirect.body, as: UTF8.self).contains("redirect_uri_mismatch"))
    }

    @Test func authorizeWithoutSignedInUserIsDenied() throws {
        let org = Org()
        let answer = authorize(
            org,
            [
                ("response_type", "code"), ("client_id", org.app.clientID), ("redirect_uri", Org.redirect),
                ("state", "s1"),
            ])
        #expect(answer.status == 302)
        #expect(
            answer.header("Location") == Org.redirect
                + "?error=access_denied&error_description=end-user%20denied%20authorization&state=s1")
    }
}

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

@Suite struct ConcurrencyTests {
    @Test func manyConcurrentTokenCallsKeepExactCounters() async throws {
        let org = Org()
        org.core.register(FakeConnectedApp(clientID: "cc", clientSecret: "s", clientCredentialsUser: "svc"))
        let fields = [("grant_type", "client_credentials"), ("client_id", "cc"), ("client_secret", "s")]
        let tasks = 16
        let callsPerTask = 100
        let tokens = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    (0..<callsPerTask).compactMap { _ in object(org.token(fields))["access_token"] as? String }
                }
            }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(tokens.count == tasks * callsPerTask)
        #expect(Set(tokens).count == tokens.count)
        let stats = org.core.stats
        #expect(stats.tokenCalls == tasks * callsPerTask)
        #expect(stats.tokenCallsByGrant == ["client_credentials": tasks * callsPerTask])
        #expect(tokens.allSatisfy { org.core.isLiveAccessToken($0) })
    }
}

/// Keeps every log line (message and metadata) in memory.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var logger: Logger {
        var logger = Logger(label: "captured") { _ in CapturingHandler(log: self) }
        logger.logLevel = .trace
        return logger
    }

    struct CapturingHandler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            log.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
        }
    }
}

@Suite struct LoggingTests {
    @Test func logsNeverContainSecretsTokensOrCodes() throws {
        let captured = CapturedLog()
        let core = FakeSalesforceCore(baseURL: Org.base, logger: captured.logger)
        let secret = "very-secret-value"
        core.register(
            FakeConnectedApp(
                clientID: "app", clientSecret: secret, redirectURIs: [Org.redirect], rotateRefreshTokens: true,
                jwtPublicKeyPEM: "not a key"))
        let code = core.issueAuthorizationCode(clientID: "app", redirectURI: Org.redirect, username: "u")
        func post(_ path: String, _ fields: [(String, String)]) -> FakeAnswer {
            core.answer(
                method: "POST", path: path, query: "", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array(Encoding.formBody(fields).utf8))
        }
        let body = object(
            post(
                "/services/oauth2/token",
                [
                    ("grant_type", "authorization_code"), ("code", code), ("client_id", "app"),
                    ("client_secret", secret), ("redirect_uri", Org.redirect),
                ]))
        let refresh = try #require(body["refresh_token"] as? String)
        let access = try #require(body["access_token"] as? String)
        let refreshFields = [
            ("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "app"),
            ("client_secret", secret),
        ]
        _ = post("/services/oauth2/token", refreshFields)
        _ = post("/services/oauth2/token", refreshFields)  // rotated out: the family is revoked and logged
        _ = post(
            "/services/oauth2/token",
            [("grant_type", "client_credentials"), ("client_id", "app"), ("client_secret", "wrong")])
        _ = core.answer(
            method: "GET", path: "/services/data/v60.0/", query: "", headers: [("Authorization", "Bearer " + access)],
            body: [])
        _ = core.answer(
            method: "GET", path: "/services/oauth2/revoke", query: "token=" + Encoding.percentEncode(access),
            headers: [], body: [])
        let lines = captured.all
        #expect(lines.count >= 7)
        #expect(lines.contains { $0.contains("family revoked") })
        for forbidden in [secret, "wrong", code, refresh, access, String(access.dropFirst(20))] {
            #expect(!lines.contains { $0.contains(forbidden) }, "a log line contains a secret")
        }
    }
}
