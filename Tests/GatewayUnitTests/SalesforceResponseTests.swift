import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct SalesforceResponseTests {
    static let secret = "5E8FEXAMPLESECRET"
    static let id = "https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001SwiU"

    static func body(issuedAt: String = "1764399600000", signature: String? = nil, extra: String = "") -> [UInt8] {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data((id + issuedAt).utf8), using: SymmetricKey(data: Data(secret.utf8)))
        let signed = signature ?? Data(mac).base64EncodedString()
        return Array(
            """
            {"access_token":"00Dxx!AQ.token","signature":"\(signed)","scope":"api refresh_token","instance_url":"https://acme.my.salesforce.com",
            "id":"\(id)","token_type":"Bearer","issued_at":"\(issuedAt)"\(extra)}
            """.utf8)
    }

    @Test func readsATokenAnswerAndVerifiesItsSignature() throws {
        let token = try SalesforceTokenEndpoint.read(
            status: 200, body: Self.body(extra: #","refresh_token":"5Aep861""#), retryAfter: nil,
            clientSecret: Self.secret)
        #expect(token.accessToken == "00Dxx!AQ.token")
        #expect(token.refreshToken == "5Aep861")
        #expect(token.issuedAtMillis == 1_764_399_600_000)
        #expect(token.orgID == "00Dxx0000001gPL")
        #expect(token.userID == "005xx000001SwiU")
    }

    @Test func wrongOrMissingSignatureIsRefused() {
        #expect(throws: SalesforceFailure.badSignature) {
            try SalesforceTokenEndpoint.read(
                status: 200, body: Self.body(signature: "AAAA"), retryAfter: nil, clientSecret: Self.secret)
        }
        #expect(throws: SalesforceFailure.badSignature) {
            try SalesforceTokenEndpoint.read(
                status: 200, body: Self.body(), retryAfter: nil, clientSecret: "another-secret")
        }
        // Without a secret there is nothing to verify against.
        #expect(throws: Never.self) {
            try SalesforceTokenEndpoint.read(
                status: 200, body: Self.body(signature: "AAAA"), retryAfter: nil, clientSecret: nil)
        }
    }

    @Test func secondsIssuedAtIsReadAsSeconds() throws {
        let token = try SalesforceTokenEndpoint.read(
            status: 200, body: Self.body(issuedAt: "1764399600"), retryAfter: nil, clientSecret: Self.secret)
        #expect(token.issuedAtMillis == 1_764_399_600_000)
    }

    @Test func errorsAreClassified() {
        let refused = Array(#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#.utf8)
        #expect(
            throws: SalesforceFailure.refused(
                UpstreamDetails(
                    status: 400, error: "invalid_grant", errorDescription: "expired access/refresh token"))
        ) {
            try SalesforceTokenEndpoint.read(status: 400, body: refused, retryAfter: nil, clientSecret: nil)
        }
        #expect(throws: SalesforceFailure.serverError(status: 503)) {
            try SalesforceTokenEndpoint.read(
                status: 503, body: Array("<html>".utf8), retryAfter: nil, clientSecret: nil)
        }
        #expect(throws: SalesforceFailure.unreadable(status: 200)) {
            try SalesforceTokenEndpoint.read(
                status: 200, body: Array("garbage".utf8), retryAfter: nil, clientSecret: nil)
        }
        let throttled = UpstreamDetails(status: 429, error: nil, errorDescription: nil)
        #expect(throws: SalesforceFailure.throttled(retryAfterSeconds: 30, throttled)) {
            try SalesforceTokenEndpoint.read(status: 429, body: [], retryAfter: "30", clientSecret: nil)
        }
        let rate = Array(#"{"error":"rate_limit_exceeded","error_description":"too many"}"#.utf8)
        #expect(
            throws: SalesforceFailure.throttled(
                retryAfterSeconds: 60,
                UpstreamDetails(
                    status: 400, error: "rate_limit_exceeded", errorDescription: "too many"))
        ) {
            try SalesforceTokenEndpoint.read(status: 400, body: rate, retryAfter: nil, clientSecret: nil)
        }
    }

    @Test func failuresMapToTheContractTable() {
        let grant = TokenGrant.refreshToken("r")
        let code = TokenGrant.authorizationCode(code: "c", redirectURI: "https://x", codeVerifier: nil)
        func details(_ error: String, _ description: String = "") -> UpstreamDetails {
            UpstreamDetails(status: 400, error: error, errorDescription: description)
        }
        #expect(
            SalesforceFailure.refused(details("invalid_grant", "expired authorization code")).gatewayError(grant: code)
                .code.status
                == 400)
        #expect(
            SalesforceFailure.refused(details("invalid_grant")).gatewayError(grant: code).code.rawValue
                == "invalid_grant")
        #expect(
            SalesforceFailure.refused(details("redirect_uri_mismatch")).gatewayError(grant: code).code.rawValue
                == "invalid_grant")
        #expect(
            SalesforceFailure.refused(details("invalid_grant")).gatewayError(grant: grant).code.rawValue
                == "reauthorization_required")
        #expect(
            SalesforceFailure.refused(details("invalid_client")).gatewayError(grant: grant).code.rawValue
                == "client_rejected")
        #expect(
            SalesforceFailure.refused(details("invalid_client_id")).gatewayError(grant: code).code.rawValue
                == "client_rejected")
        #expect(
            SalesforceFailure.refused(details("invalid_grant", "request not supported on this domain")).gatewayError(
                grant: .clientCredentials
            ).code.rawValue == "client_rejected")
        let throttled = SalesforceFailure.throttled(retryAfterSeconds: 7, details("rate_limit_exceeded")).gatewayError(
            grant: grant)
        #expect(
            throttled.code.status == 429 && throttled.code.rawValue == "upstream_rate_limited"
                && throttled.retryAfterSeconds == 7)
        #expect(SalesforceFailure.serverError(status: 500).gatewayError(grant: grant).code.status == 502)
        #expect(SalesforceFailure.badSignature.gatewayError(grant: grant).code.rawValue == "upstream_error")
        #expect(SalesforceFailure.timeout.gatewayError(grant: grant).code.status == 504)
    }

    @Test func jwtAssertionIsRS256WithTheContractClaims() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let client = Client(
            tenant: "t", id: "c", grantType: .jwtBearer, loginURL: "https://test.salesforce.com", clientID: "3MVG9",
            clientSecret: nil, privateKey: key.pemRepresentation, redirectURI: nil, scopes: nil,
            username: "u@example.com",
            audience: nil, tokenTTLSeconds: 3600)
        let now = Date()
        let assertion = try JWTAssertion.make(client: client, now: now)
        let parts = assertion.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        func decode(_ part: String) throws -> [UInt8] {
            var base64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            return Array(try #require(Data(base64Encoded: base64)))
        }
        #expect(try JSONValue.parse(try decode(parts[0])) == .object(["alg": .string("RS256")]))
        let claims = try JSONValue.parse(try decode(parts[1]))
        #expect(claims["iss"] == .string("3MVG9"))
        #expect(claims["sub"] == .string("u@example.com"))
        #expect(claims["aud"] == .string("https://test.salesforce.com"))
        guard case .number(let exp)? = claims["exp"] else {
            Issue.record("no exp")
            return
        }
        #expect(exp > now.timeIntervalSince1970 && exp <= now.timeIntervalSince1970 + 180)
        let signature = _RSA.Signing.RSASignature(rawRepresentation: try decode(parts[2]))
        #expect(
            key.publicKey.isValidSignature(
                signature, for: Array((parts[0] + "." + parts[1]).utf8), padding: .insecurePKCS1v1_5))
    }
}
