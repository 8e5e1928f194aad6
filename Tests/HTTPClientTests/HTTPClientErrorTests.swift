import CLibCurl
import Testing

@testable import HTTPClient

private func site(connected: Bool, responseTooLarge: Bool = false, errorBuffer: String = "", secrets: [String] = [])
    -> CurlCallSite
{
    CurlCallSite(
        transferStarted: true, connected: connected, responseTooLarge: responseTooLarge, errorBuffer: errorBuffer,
        secrets: secrets)
}

private func error(_ code: CURLcode, _ site: CurlCallSite) -> HTTPClientError? {
    do throws(HTTPClientError) {
        try check(code, site)
        return nil
    } catch {
        return error
    }
}

@Test func curlCodesMapToKindsAndRetrySafety() throws {
    #expect(error(CURLE_OK, site(connected: true)) == nil)

    let connectTimeout = try #require(error(CURLE_OPERATION_TIMEDOUT, site(connected: false)))
    #expect(connectTimeout.kind == .connectTimeout)
    #expect(!connectTimeout.mayHaveReachedServer)

    let timeout = try #require(error(CURLE_OPERATION_TIMEDOUT, site(connected: true)))
    #expect(timeout.kind == .timeout)
    #expect(timeout.mayHaveReachedServer)
    #expect(timeout.code == 28)

    let resolve = try #require(error(CURLE_COULDNT_RESOLVE_HOST, site(connected: false)))
    #expect(resolve.kind == .couldNotConnect)
    #expect(!resolve.mayHaveReachedServer)

    let tooLarge = try #require(error(CURLE_WRITE_ERROR, site(connected: true, responseTooLarge: true)))
    #expect(tooLarge.kind == .responseTooLarge)
    let writeError = try #require(error(CURLE_WRITE_ERROR, site(connected: true)))
    #expect(writeError.kind == .other)

    let reset = try #require(error(CURLE_RECV_ERROR, site(connected: true)))
    #expect(reset.kind == .other)
    #expect(reset.mayHaveReachedServer)

    let verification = try #require(error(CURLE_PEER_FAILED_VERIFICATION, site(connected: true)))
    #expect(verification.kind == .tls)
    #expect(!verification.mayHaveReachedServer)

    let setup = try #require(error(CURLE_UNKNOWN_OPTION, .setup))
    #expect(setup.kind == .other)
    #expect(!setup.mayHaveReachedServer)
    #expect(!setup.message.isEmpty, "falls back to curl_easy_strerror")
}

@Test func errorMessagesRedactSecrets() throws {
    let failed = try #require(
        error(
            CURLE_COULDNT_RESOLVE_HOST,
            site(connected: false, errorBuffer: "Could not resolve host: s3cr3t and s3cr3t again", secrets: ["s3cr3t"]))
    )
    #expect(failed.message == "Could not resolve host: <redacted> and <redacted> again")
    #expect(!failed.description.contains("s3cr3t"))
}

@Test func secretsCoverQueryAndFormValues() throws {
    let request = HTTPClientRequest.form(
        url: "http://127.0.0.1:1/token?code=abc123&state=xyz", fields: [("client_secret", "p@ss w0rd+x"), ("n", "1")])
    let transfer = try CurlTransfer(request: request, configuration: HTTPClientConfiguration(), id: 1)
    let secrets = transfer.secrets()
    #expect(secrets.contains("code=abc123&state=xyz"))
    #expect(secrets.contains("abc123"))
    #expect(secrets.contains("p@ss w0rd+x"), "the decoded form value")
    #expect(secrets.contains("p%40ss%20w0rd%2Bx"), "the encoded form value")
    #expect(!secrets.contains("1"), "too short to redact")
    #expect(transfer.logTarget == "POST http://127.0.0.1:1/token")
}

@Test func loggedURLsDropUserInfoQueryAndFragment() {
    let split = CurlTransfer.split("https://user:pa55w0rd@example.com:8443/services/oauth2/token?code=abc#frag")
    #expect(split.loggable == "https://example.com:8443/services/oauth2/token")
    #expect(split.query == "code=abc")
    #expect(split.userInfo == "user:pa55w0rd")
    let plain = CurlTransfer.split("http://127.0.0.1:80/a@b")
    #expect(plain.loggable == "http://127.0.0.1:80/a@b")
    #expect(plain.userInfo == "")
}
