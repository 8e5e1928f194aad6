import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// Reading introspection answers and choosing `expires_at`, without I/O.
@Suite struct IntrospectionAnswerTests {
    static func read(_ status: Int, _ body: String) -> Result<Int64, IntrospectionFailure> {
        Result { () throws(IntrospectionFailure) in
            try SalesforceTokenEndpoint.readIntrospection(status: status, body: Array(body.utf8))
        }
    }

    @Test func anActiveAnswerGivesItsExp() {
        let body = """
            {"active":true,"scope":"api","client_id":"3MVG9","username":"a@example.com",
             "sub":"https://login.salesforce.com/id/00D/005","token_type":"access_token",
             "exp":1528502109,"iat":1528494909,"nbf":1528494909}
            """
        #expect(Self.read(200, body) == .success(1_528_502_109))
        // Tolerated shapes: exp as a string, exp in milliseconds.
        #expect(Self.read(200, #"{"active":true,"exp":"1528502109"}"#) == .success(1_528_502_109))
        #expect(Self.read(200, #"{"active":true,"exp":1528502109000}"#) == .success(1_528_502_109))
    }

    @Test func anInactiveAnswerIsInactive() {
        #expect(Self.read(200, #"{"active":false}"#) == .failure(.inactive))
        #expect(Self.read(200, #"{"active":false,"exp":1528502109}"#) == .failure(.inactive))
    }

    @Test func answersWithoutAUsableActiveOrExpAreUnreadable() {
        for body in [
            "", "<html>", #"{"active":tr"#, #"{"exp":1528502109}"#, #"{"active":"true","exp":1528502109}"#,
            #"{"active":true}"#, #"{"active":true,"exp":null}"#, #"{"active":true,"exp":-5}"#,
            #"{"active":true,"exp":1528502109.5}"#, #"{"active":true,"exp":"soon"}"#, "[true]",
        ] {
            #expect(Self.read(200, body) == .failure(.unreadable(status: 200)), "\(body)")
        }
        #expect(Self.read(204, "") == .failure(.unreadable(status: 204)))
        #expect(Self.read(302, #"{"active":true,"exp":1528502109}"#) == .failure(.unreadable(status: 302)))
    }

    @Test func errorStatusesAreClassified() {
        #expect(
            Self.read(401, #"{"error":"invalid_client","error_description":"invalid client credentials"}"#)
                == .failure(
                    .refused(
                        UpstreamDetails(
                            status: 401, error: "invalid_client", errorDescription: "invalid client credentials"))))
        #expect(
            Self.read(429, "Too Many Requests")
                == .failure(.refused(UpstreamDetails(status: 429, error: nil, errorDescription: nil))))
        #expect(Self.read(500, "<html>") == .failure(.serverError(status: 500)))
        #expect(Self.read(503, #"{"active":true,"exp":1528502109}"#) == .failure(.serverError(status: 503)))
    }

    @Test func eachFailureHasItsMetricOutcome() {
        #expect(IntrospectionFailure.inactive.outcome == .inactive)
        #expect(IntrospectionFailure.refused(UpstreamDetails(status: 401)).outcome == .refused)
        #expect(IntrospectionFailure.timeout.outcome == .timeout)
        for failure in [
            IntrospectionFailure.serverError(status: 500), .unreadable(status: 200), .unreachable, .transport,
        ] {
            #expect(failure.outcome == .error)
        }
        #expect(IntrospectionFailure.noClientSecret.outcome == nil)
    }

    @Test func theEndpointSitsBesideTheTokenEndpoint() {
        var client = Client(
            tenant: "t", id: "c", grantType: .authorizationCode, loginURL: "https://acme.my.salesforce.com/",
            clientID: "3MVG9", clientSecret: "s", tokenTTLSeconds: 3600)
        #expect(client.introspectEndpoint == "https://acme.my.salesforce.com/services/oauth2/introspect")
        client.loginURL = "https://acme.my.site.com/partners"
        #expect(client.introspectEndpoint == "https://acme.my.site.com/partners/services/oauth2/introspect")
    }
}
