import Codecs
import Crypto
import Foundation
import HTTPClient
import Logging
import TokenGatewayDomain
import TokenGatewayStore
import _CryptoExtras

/// Calls `{login_url}/services/oauth2/token` and reads Salesforce's answer: a token (no `expires_in`; `issued_at` in
/// milliseconds, a `signature` to verify) or an OAuth error, classified as `SalesforceFailure`.
public struct SalesforceTokenEndpoint: Sendable {
    let http: HTTPClient
    let metrics: Metrics
    let logger: Logger
    let maxAttempts: Int
    let baseBackoffMilliseconds: Int

    /// Calls Salesforce through `http`: at most `maxAttempts` attempts per call, retrying only failures a retry can
    /// fix, after a jittered back-off that starts near `baseBackoffMilliseconds` and doubles.
    public init(
        http: HTTPClient, metrics: Metrics, logger: Logger, maxAttempts: Int = 3, baseBackoffMilliseconds: Int = 200
    ) {
        self.http = http
        self.metrics = metrics
        self.logger = logger
        self.maxAttempts = maxAttempts
        self.baseBackoffMilliseconds = baseBackoffMilliseconds
    }

    /// The form of a grant for a client.
    public static func form(for grant: TokenGrant, client: Client) -> [(String, String)] {
        switch grant {
        case .authorizationCode(let code, let redirectURI, let verifier):
            var fields = [
                ("grant_type", "authorization_code"), ("code", code), ("client_id", client.clientID),
            ]
            if let secret = client.clientSecret { fields.append(("client_secret", secret)) }
            fields.append(("redirect_uri", redirectURI))
            if let verifier { fields.append(("code_verifier", verifier)) }
            return fields
        case .refreshToken(let token):
            var fields = [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client.clientID)]
            if let secret = client.clientSecret { fields.append(("client_secret", secret)) }
            return fields
        case .jwtBearer(let assertion):
            return [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)]
        case .clientCredentials:
            return [
                ("grant_type", "client_credentials"), ("client_id", client.clientID),
                ("client_secret", client.clientSecret ?? ""),
            ]
        }
    }

    /// Requests a token, retrying only failures that are safe to repeat for this grant, with backoff and jitter.
    /// With a `deadline`, no attempt runs past it (each attempt's timeout is cut to what remains), so the whole
    /// call, retries included, ends by then: a refresh lease relies on that.
    public func requestToken(
        _ grant: TokenGrant, client: Client, deadline: ContinuousClock.Instant? = nil
    ) async throws(SalesforceFailure) -> SalesforceToken {
        var attempt = 1
        while true {
            let started = ContinuousClock.now
            var timeout: Duration?
            if let deadline {
                timeout = deadline - started
                guard timeout! >= .milliseconds(50) else { throw .timeout }
            }
            do {
                let token = try await attemptOnce(grant, client: client, timeout: timeout)
                metrics.upstreamCall(grant: grant.label, outcome: "success", duration: ContinuousClock.now - started)
                return token
            } catch {
                metrics.upstreamCall(
                    grant: grant.label, outcome: Self.outcomeLabel(error), duration: ContinuousClock.now - started)
                let retryable: Bool
                switch error {
                case .unreachable: retryable = true
                case .serverError, .unreadable, .transport: retryable = grant.isIdempotent
                default: retryable = false
                }
                guard retryable, attempt < maxAttempts else { throw error }
                let base = baseBackoffMilliseconds << (attempt - 1)
                let delay = base / 2 + Int.random(in: 0...base)
                if let deadline, ContinuousClock.now + .milliseconds(delay + 50) >= deadline { throw error }
                logger.warning(
                    "salesforce token call failed, retrying",
                    metadata: [
                        "grant": "\(grant.label)", "attempt": "\(attempt)", "failure": "\(Self.outcomeLabel(error))",
                        "retry_in_ms": "\(delay)",
                    ])
                try? await Task.sleep(for: .milliseconds(delay))
                attempt += 1
            }
        }
    }

    static func outcomeLabel(_ failure: SalesforceFailure) -> String {
        switch failure {
        case .refused(let details): details.error == "invalid_grant" ? "invalid_grant" : "refused"
        case .throttled: "throttled"
        case .serverError: "server_error"
        case .unreadable: "unreadable"
        case .badSignature: "bad_signature"
        case .timeout: "timeout"
        case .unreachable: "unreachable"
        case .transport: "transport"
        }
    }

    func attemptOnce(_ grant: TokenGrant, client: Client, timeout: Duration?) async throws(SalesforceFailure)
        -> SalesforceToken
    {
        let request = HTTPClientRequest.form(
            url: client.tokenEndpoint, fields: Self.form(for: grant, client: client),
            headers: [("Accept", "application/json")], timeout: timeout)
        let response: HTTPClientResponse
        do {
            response = try await http.send(request)
        } catch {
            throw Self.transportFailure(error)
        }
        return try Self.read(
            status: response.status, body: response.body, retryAfter: response.header("Retry-After"),
            clientSecret: client.clientSecret)
    }

    /// What a call that got no answer means: `.timeout`, `.unreachable` when the request surely was not sent,
    /// else `.transport`.
    static func transportFailure(_ error: any Error) -> SalesforceFailure {
        guard let error = error as? HTTPClientError else { return .transport }
        switch error.kind {
        case .timeout: return .timeout
        default: return error.mayHaveReachedServer ? .transport : .unreachable
        }
    }

    /// Reads a token-endpoint answer. Pure, so each of Salesforce's shapes is unit-tested.
    public static func read(status: Int, body: [UInt8], retryAfter: String?, clientSecret: String?)
        throws(SalesforceFailure)
        -> SalesforceToken
    {
        let json = try? JSONValue.parse(body)
        let details = UpstreamDetails(
            status: status, error: json?["error"]?.stringValue.map { String($0.prefix(200)) },
            errorDescription: json?["error_description"]?.stringValue.map { String($0.prefix(500)) })
        let retrySeconds = retryAfter.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.map {
            min(max($0, 1), 3600)
        }
        let rateLimited =
            status == 429 || details.error == "rate_limit_exceeded"
            || (details.errorDescription ?? "").contains("LOGIN_RATE_EXCEEDED")
            || (details.error ?? "").contains("LOGIN_RATE_EXCEEDED")
        if rateLimited { throw .throttled(retryAfterSeconds: retrySeconds ?? 60, details) }
        if status >= 500 { throw .serverError(status: status) }
        if status != 200 {
            guard details.error != nil else { throw .unreadable(status: status) }
            throw .refused(details)
        }
        guard let json, let accessToken = json["access_token"]?.stringValue, !accessToken.isEmpty,
            let instanceURL = json["instance_url"]?.stringValue, let identityURL = json["id"]?.stringValue,
            let issuedAt = json["issued_at"].flatMap(Self.issuedAtMillis)
        else { throw .unreadable(status: status) }
        if let clientSecret {
            guard let signature = json["signature"]?.stringValue,
                Self.verifySignature(
                    signature, identityURL: identityURL, issuedAt: json["issued_at"]!, secret: clientSecret)
            else { throw .badSignature }
        }
        return SalesforceToken(
            accessToken: accessToken, refreshToken: json["refresh_token"]?.stringValue, instanceURL: instanceURL,
            identityURL: identityURL, scope: json["scope"]?.stringValue,
            tokenType: json["token_type"]?.stringValue ?? "Bearer",
            issuedAtMillis: issuedAt)
    }

    /// `issued_at` is milliseconds as a string (13 digits); old documents say seconds, so 10 digits are read as seconds.
    static func issuedAtMillis(_ value: JSONValue) -> Int64? {
        let text: String
        switch value {
        case .string(let string): text = string
        case .number(let number) where number >= 0 && number < 1e16: text = String(Int64(number))
        default: return nil
        }
        guard let number = Int64(text), number > 0 else { return nil }
        return text.count <= 10 ? number * 1000 : number
    }

    /// Base64(HMAC-SHA256(key: secret, message: id + issued_at)), compared in constant time.
    static func verifySignature(_ signature: String, identityURL: String, issuedAt: JSONValue, secret: String) -> Bool {
        let issued: String
        switch issuedAt {
        case .string(let string): issued = string
        case .number(let number): issued = String(Int64(number))
        default: return false
        }
        guard let given = Data(base64Encoded: signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            given, authenticating: Data((identityURL + issued).utf8), using: SymmetricKey(data: Data(secret.utf8)))
    }

    /// Revokes a refresh token at Salesforce; best effort, failures are only logged.
    public func revoke(_ target: RevocationTarget) async {
        let request = HTTPClientRequest.form(url: target.endpoint, fields: [("token", target.token)])
        do {
            let response = try await http.send(request)
            if response.status != 200 {
                logger.warning("salesforce revoke refused", metadata: ["status": "\(response.status)"])
            }
        } catch {
            logger.warning("salesforce revoke failed", metadata: ["error": "\(error)"])
        }
    }
}
