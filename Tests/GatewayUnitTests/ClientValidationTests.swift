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
