import HTTPServer
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct ClientValidationTests {
    static let allow = UpstreamAllowList.salesforceDefault

    static func body(_ json: String) throws -> RequestBody {
        guard case .object(let members) = try JSONValue.parse(Array(json.utf8)) else {
            throw GatewayError.invalidRequest("x")
        }
        return RequestBody(members: members)
    }

    func message(_ json: String) -> String? {
        do {
            _ = try ClientValidation.create(tenant: "t", body: try Self.body(json), allowList: Self.allow)
            return nil
        } catch let error as GatewayError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    static let authCode =
        #"{"id":"crm","grant_type":"authorization_code","client_id":"3MVG9","client_secret":"s","redirect_uri":"https://login.salesforce.com/cb"}"#

    @Test func validAuthorizationCodeClientGetsDefaults() throws {
        let client = try ClientValidation.create(tenant: "t", body: try Self.body(Self.authCode), allowList: Self.allow)
        #expect(client.loginURL == "https://login.salesforce.com")
        #expect(client.tokenTTLSeconds == 3600)
        #expect(client.grantType == .authorizationCode)
    }

    @Test func eachMissingOrWrongFieldIsNamed() {
        #expect(message(#"{"grant_type":"authorization_code"}"#)?.hasPrefix("id:") == true)
        #expect(message(#"{"id":"Bad Id","grant_type":"authorization_code"}"#)?.hasPrefix("id:") == true)
        #expect(message(#"{"id":"a","grant_type":"password"}"#)?.hasPrefix("grant_type:") == true)
        #expect(
            message(#"{"id":"a","grant_type":"authorization_code","client_id":"x","redirect_uri":"https://a.b/c"}"#)?
                .hasPrefix("client_secret:") == true)
        #expect(
            message(#"{"id":"a","grant_type":"authorization_code","client_id":"x","client_secret":"s"}"#)?
                .hasPrefix("redirect_uri:") == true)
        #expect(
            message(#"{"id":"a","grant_type":"jwt_bearer","client_id":"x","private_key":"k"}"#)?.hasPrefix("username:")
                == true)
        #expect(
            message(#"{"id":"a","grant_type":"jwt_bearer","client_id":"x","username":"u","private_key":"not a key"}"#)?
                .hasPrefix("private_key:") == true)
        #expect(
            message(Self.authCode.replacingOccurrences(of: "}", with: #","token_ttl_seconds":59}"#))?
                .hasPrefix("token_ttl_seconds:") == true)
        #expect(
            message(Self.authCode.replacingOccurrences(of: "}", with: #","scopes":["api","bad scope"]}"#))?
                .hasPrefix("scopes:") == true)
        #expect(
            message(Self.authCode.replacingOccurrences(of: "}", with: #","colour":"red"}"#))?.hasPrefix("colour:")
                == true)
        #expect(
            message(
                Self.authCode.replacingOccurrences(
                    of: "}", with: #","client_id":"\#(String(repeating: "x", count: 256))"}"#))?
                .hasPrefix("client_id:") == true)
    }

    @Test func loginURLMustBeOnTheAllowList() {
        let internalHost = Self.authCode.replacingOccurrences(of: "}", with: #","login_url":"http://169.254.169.254"}"#)
        #expect(message(internalHost)?.hasPrefix("login_url:") == true)
        let plainHTTP = Self.authCode.replacingOccurrences(
            of: "}", with: #","login_url":"http://login.salesforce.com"}"#)
        #expect(message(plainHTTP)?.hasPrefix("login_url:") == true)
        let cc =
            #"{"id":"a","grant_type":"client_credentials","client_id":"x","client_secret":"s","login_url":"https://login.salesforce.com"}"#
        #expect(message(cc)?.hasPrefix("login_url:") == true)
        let myDomain = cc.replacingOccurrences(of: "login.salesforce.com", with: "acme.my.salesforce.com")
        #expect(message(myDomain) == nil)
    }

    @Test func loginURLMessagesSayWhatIsWrongWithIt() {
        func login(_ url: String) -> String? {
            message(Self.authCode.replacingOccurrences(of: "}", with: #","login_url":"\#(url)"}"#))
        }
        let userinfo = login("https://ops:hunter2@login.salesforce.com")
        #expect(userinfo?.hasPrefix("login_url: carries a user name or password") == true, "\(userinfo ?? "")")
        #expect(userinfo?.contains("hunter2") == false && userinfo?.contains("query") == false)
        #expect(login("https://login.salesforce.com:99999")?.hasPrefix("login_url: has a port") == true)
        #expect(login("https://evil.com:1.salesforce.com:443")?.hasPrefix("login_url: has a host") == true)
        #expect(login("https://login.salesforce.com?x=1")?.contains("query") == true)
    }

    @Test func jwtClientAcceptsPKCS1AndPKCS8Keys() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        for pem in [key.pemRepresentation, key.pkcs8PEMRepresentation] {
            let escaped = pem.replacingOccurrences(of: "\n", with: "\\n")
            let json =
                #"{"id":"j","grant_type":"jwt_bearer","client_id":"x","username":"u@x.com","private_key":"\#(escaped)"}"#
            let client = try ClientValidation.create(tenant: "t", body: try Self.body(json), allowList: Self.allow)
            #expect(client.effectiveAudience == "https://login.salesforce.com")
        }
    }

    @Test func patchMergesValidatesTheWholeAndRemovesWithNull() throws {
        let existing = try ClientValidation.create(
            tenant: "t", body: try Self.body(Self.authCode), allowList: Self.allow)
        let patched = try ClientValidation.patch(
            existing, body: try Self.body(#"{"scopes":["api"],"token_ttl_seconds":120}"#), allowList: Self.allow)
        #expect(patched.scopes == ["api"] && patched.tokenTTLSeconds == 120 && patched.clientSecret == "s")
        let removed = try ClientValidation.patch(
            patched, body: try Self.body(#"{"scopes":null}"#), allowList: Self.allow)
        #expect(removed.scopes == nil)
        #expect(throws: GatewayError.self) {
            try ClientValidation.patch(existing, body: try Self.body(#"{"client_secret":null}"#), allowList: Self.allow)
        }
        #expect(throws: GatewayError.self) {
            try ClientValidation.patch(existing, body: try Self.body(#"{"id":"other"}"#), allowList: Self.allow)
        }
        #expect(throws: GatewayError.self) {
            try ClientValidation.patch(
                existing, body: try Self.body(#"{"grant_type":"jwt_bearer"}"#), allowList: Self.allow)
        }
    }

    @Test func salesforceEndpointsSitUnderTheLoginURLWithOrWithoutATrailingSlash() throws {
        let json = Self.authCode.replacingOccurrences(
            of: #""grant_type""#, with: #""login_url":"https://acme.my.salesforce.com/","grant_type""#)
        let client = try ClientValidation.create(tenant: "t", body: try Self.body(json), allowList: Self.allow)
        #expect(client.tokenEndpoint == "https://acme.my.salesforce.com/services/oauth2/token")
        #expect(client.authorizeEndpoint == "https://acme.my.salesforce.com/services/oauth2/authorize")
        // What the store revokes at, from the login_url column alone.
        #expect(
            Client.revokeEndpoint(loginURL: client.loginURL) == "https://acme.my.salesforce.com/services/oauth2/revoke")
        #expect(
            Client.revokeEndpoint(loginURL: "https://test.salesforce.com")
                == "https://test.salesforce.com/services/oauth2/revoke")
    }
}

@Suite struct RequestBodyTests {
    func request(_ body: String, type: String? = "application/json", tooLarge: Bool = false) -> HTTPRequest {
        var headers = HTTPHeaders()
        if let type { headers.add("Content-Type", type) }
        var request = HTTPRequest(method: "POST", path: "/token", headers: headers, body: Array(body.utf8))
        request.bodyTooLarge = tooLarge
        return request
    }

    func code(_ request: HTTPRequest) -> (Int, String)? {
        do {
            _ = try RequestBody.parse(request, maxBytes: 10)
            return nil
        } catch {
            return (error.code.status, error.code.rawValue)
        }
    }

    @Test func aStringHoldingNULIsRefusedNamingItsField() {
        func message(_ body: String) -> String? {
            do {
                _ = try RequestBody.parse(request(body), maxBytes: 1000)
                return nil
            } catch {
                return error.code.status == 400 && error.code.rawValue == "invalid_request" ? error.message : "\(error)"
            }
        }
        #expect(message(#"{"id":"acme","name":"Acme\u0000Admin"}"#)?.hasPrefix("name: must not contain") == true)
        #expect(message(#"{"scopes":["api","x\u0000"],"a":"b"}"#)?.hasPrefix("scopes:") == true)
        #expect(message(#"{"client":{"deep":["\u0000"]}}"#)?.hasPrefix("client:") == true)
        #expect(message(#"{"na\u0000me":"x"}"#)?.hasPrefix("a member name:") == true)
        #expect(message(#"{"name":"Acme\u0001 \u00e9"}"#) == nil)  // other escapes are fine
    }

    @Test func checksSizeThenMediaTypeThenSyntax() {
        #expect(code(request("", tooLarge: true))! == (413, "payload_too_large"))
        #expect(code(request("{}", type: "text/plain"))! == (415, "unsupported_media_type"))
        #expect(code(request("{}", type: nil))! == (415, "unsupported_media_type"))
        #expect(code(request("{", type: "application/json; charset=utf-8"))! == (400, "invalid_request"))
        #expect(code(request(""))! == (400, "invalid_request"))
        #expect(code(request("[1]"))! == (400, "invalid_request"))
        #expect(code(request("{}", type: "Application/JSON; charset=UTF-8")) == nil)
    }
}

@Suite struct KeyRegistryTests {
    @Test func generatedKeysCheckInMemoryAndOthersDoNot() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        let made = KeyRegistry.generate()
        #expect(made.key.hasPrefix("tgw_\(made.id)_"))
        #expect(KeyRegistry.keyID(of: made.key) == made.id)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
        var wrong = Array(made.key)
        wrong[wrong.count - 1] = wrong.last == "A" ? "B" : "A"
        #expect(registry.check(authorization: "Bearer \(String(wrong))") == .invalid)
        #expect(registry.check(authorization: "Bearer " + String(repeating: "a", count: 40)) == .admin)
        #expect(registry.check(authorization: "Basic abc") == .invalid)
        #expect(registry.check(authorization: nil) == .invalid)
        registry.remove(id: made.id)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
    }

    @Test func aKeyAlreadyMatchedIsRememberedUntilItsEntryChanges() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        let made = KeyRegistry.generate()
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        var wrong = Array(made.key)
        wrong[wrong.count - 1] = wrong.last == "A" ? "B" : "A"
        for _ in 0..<3 {  // the first check hashes and remembers; the next ones compare with what was remembered
            #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
            #expect(registry.check(authorization: "Bearer \(String(wrong))") == .invalid)
        }
        registry.replaceAll([])  // a reload without the key forgets it at once
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
        registry.removeTenant("acme")
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        // The same id with another hash (a rekeyed entry): the remembered bytes no longer pass.
        registry.insert(id: made.id, tenant: "acme", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "acme"))
        registry.insert(id: made.id, tenant: "acme", hexHash: String(repeating: "0", count: 64))
        #expect(registry.check(authorization: "Bearer \(made.key)") == .invalid)
    }

    @Test func keyIDsTheDatabaseDidNotKnowAreRefusedWithoutAskingAgain() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        let made = KeyRegistry.generate()
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        registry.rememberUnknown(id: made.id)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .invalid)
        registry.rememberUnknown(id: made.id, now: TokenService.now - KeyRegistry.unknownMemorySeconds - 1)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .unknownKey(id: made.id))
        // A key that is then inserted (made here) is found regardless.
        registry.rememberUnknown(id: made.id)
        registry.insert(id: made.id, tenant: "t", hexHash: made.hash)
        #expect(registry.check(authorization: "Bearer \(made.key)") == .key(id: made.id, tenant: "t"))
    }

    @Test func usageIsBatched() {
        let registry = KeyRegistry(adminToken: String(repeating: "a", count: 40))
        registry.markUsed(id: "k", now: 10)
        registry.markUsed(id: "k", now: 20)
        registry.tokenIssued(id: "k", tenant: "t")
        registry.tokenIssued(id: "k", tenant: "t")
        let usage = registry.drainUsage()
        #expect(usage.lastUsed == ["k": 20])
        #expect(usage.issued["k"]?.count == 2)
        #expect(registry.drainUsage().lastUsed.isEmpty)
    }

    @Test func rateLimiterRefillsOverTime() {
        let limiter = UpstreamRateLimiter(perMinute: 2)
        #expect(limiter.take(keyID: "k", now: 0) == nil)
        #expect(limiter.take(keyID: "k", now: 0) == nil)
        #expect(limiter.take(keyID: "k", now: 0) == 30)
        #expect(limiter.take(keyID: "k", now: 30) == nil)
        #expect(limiter.take(keyID: "other", now: 0) == nil)
    }
}
