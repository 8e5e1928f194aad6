import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct AuthorizationCodeTests {
    static let code = "aPrx0jWjRo8KRXuA.2sGq+b/c=="

    @Test func rawCodeIsTakenAsItIs() {
        #expect(AuthorizationCode.extract(Self.code) == .code(Self.code))
        #expect(AuthorizationCode.extract("  \(Self.code)\n") == .code(Self.code))
    }

    @Test func urlEncodedCodeIsDecodedOnceKeepingPlus() {
        #expect(AuthorizationCode.extract("aPrx0jWjRo8KRXuA.2sGq+b%2Fc%3D%3D") == .code(Self.code))
        // Decoded once only: %253D stays %3D.
        #expect(AuthorizationCode.extract("abc%253D") == .code("abc%3D"))
    }

    @Test func wholeRedirectURLYieldsTheDecodedCode() {
        let url = "https://login.salesforce.com/oauth2/callback?code=aPrx0jWjRo8KRXuA.2sGq+b%2Fc%3D%3D&state=xyz"
        #expect(AuthorizationCode.extract(url) == .code(Self.code))
        #expect(AuthorizationCode.extract("?state=1&code=abc%3D%3D") == .code("abc=="))
    }

    @Test func redirectWithSalesforceErrorIsReported() {
        let url = "https://app.example.com/cb?error=access_denied&error_description=end-user+denied+authorization"
        #expect(AuthorizationCode.extract(url) == .error("access_denied", description: "end-user denied authorization"))
        #expect(AuthorizationCode.extract("https://app.example.com/cb?state=1") == .missing)
        #expect(AuthorizationCode.extract("   ") == .missing)
    }

    @Test func malformedPercentSequencesAreKept() {
        #expect(AuthorizationCode.extract("a%ZZb%4") == .code("a%ZZb%4"))
        #expect(AuthorizationCode.extract("%41%42") == .code("AB"))
    }
}
