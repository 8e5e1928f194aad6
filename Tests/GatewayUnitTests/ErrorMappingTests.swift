import Logging
import Postgres
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// The contract's answers to failures of the database and of Salesforce, without I/O.
@Suite struct ErrorMappingTests {
    static let logger = Logger(label: "test")

    @Test func aBusyPoolIsNotReportedAsAnUnreachableDatabase() {
        let busy = GatewayAPI.errorResponse(
            PostgresError(kind: .poolExhausted, message: "no free connection within 2 s"), logger: nil)
        #expect(busy.status == 503)
        #expect(busy.headers["Retry-After"] == "1")
        let text = String(decoding: busy.body, as: UTF8.self)
        #expect(text.contains("busy") && !text.contains("unreachable"), "\(text)")
        let down = GatewayAPI.errorResponse(PostgresError(kind: .unavailable, message: "refused"), logger: nil)
        #expect(down.status == 503 && String(decoding: down.body, as: UTF8.self).contains("unreachable"))
        #expect(down.headers["Retry-After"] == nil)
        let tokenPath = TokenService.databaseFailure(
            PostgresError(kind: .poolExhausted, message: "x"), logger: Self.logger)
        #expect(tokenPath == GatewayError.busy)
        #expect(
            TokenService.databaseFailure(PostgresError(kind: .unavailable, message: "x"), logger: Self.logger)
                == GatewayError.unavailable)
    }

    @Test func salesforceFailuresMapToTheContractsErrors() {
        let refresh = TokenGrant.refreshToken("r")
        let code = TokenGrant.authorizationCode(code: "c", redirectURI: "https://x/cb", codeVerifier: nil)
        func details(_ error: String, _ description: String = "") -> UpstreamDetails {
            UpstreamDetails(status: 400, error: error, errorDescription: description)
        }
        let cases: [(SalesforceFailure, TokenGrant, Int, String)] = [
            (
                .refused(details("invalid_grant", "expired access/refresh token")), refresh, 409,
                "reauthorization_required"
            ),
            (.refused(details("invalid_grant", "expired authorization code")), code, 400, "invalid_grant"),
            (.refused(details("invalid_client_id")), refresh, 409, "client_rejected"),
            (.refused(details("invalid_client")), code, 409, "client_rejected"),
            (.refused(details("unsupported_grant_type")), refresh, 409, "client_rejected"),
            (
                .refused(details("invalid_grant", "request not supported on this domain")), .clientCredentials, 409,
                "client_rejected"
            ),
            (.refused(details("invalid_request")), refresh, 502, "upstream_error"),
            (.throttled(retryAfterSeconds: 17, details("rate_limit_exceeded")), refresh, 429, "upstream_rate_limited"),
            (.serverError(status: 503), refresh, 502, "upstream_error"),
            (.unreadable(status: 200), refresh, 502, "upstream_error"),
            (.badSignature, refresh, 502, "upstream_error"),
            (.timeout, refresh, 504, "upstream_timeout"),
            (.unreachable, refresh, 502, "upstream_error"),
            (.transport, refresh, 502, "upstream_error"),
        ]
        for (failure, grant, status, code) in cases {
            let mapped = failure.gatewayError(grant: grant)
            #expect(mapped.code.status == status && mapped.code.rawValue == code, "\(failure) → \(mapped)")
        }
        #expect(
            SalesforceFailure.throttled(retryAfterSeconds: 17, details("x")).gatewayError(grant: refresh)
                .retryAfterSeconds == 17)
    }

    @Test func aRecordedFailureSurvivesTheDatabaseRoundTrip() {
        let failure = GatewayError(
            .reauthorizationRequired, message: "a \"quoted\" message",
            upstream: UpstreamDetails(status: 400, error: "invalid_grant", errorDescription: "inactive user"),
            retryAfterSeconds: nil)
        #expect(GatewayStore.decodeFailure(GatewayStore.encode(failure)) == failure)
        let limited = GatewayError(.upstreamTimeout, message: "m", retryAfterSeconds: 15)
        #expect(GatewayStore.decodeFailure(GatewayStore.encode(limited)) == limited)
        #expect(GatewayStore.decodeFailure("not json") == nil)
    }
}
