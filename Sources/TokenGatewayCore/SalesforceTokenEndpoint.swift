import Codecs
import Crypto
import _CryptoExtras
import Foundation
import HTTPClient
import Logging

/// A successful answer of Salesforce's token endpoint.
public struct SalesforceToken: Sendable, Equatable {
    public var accessToken: String
    public var refreshToken: String?
    public var instanceURL: String
    public var identityURL: String
    public var scope: String?
    public var tokenType: String
    /// Milliseconds since the epoch, as Salesforce's `issued_at` says.
    public var issuedAtMillis: Int64

    /// The org and user ids from the identity URL `.../id/<orgId>/<userId>`.
    public var orgID: String? { identityParts?.org }
    public var userID: String? { identityParts?.user }

    private var identityParts: (org: String, user: String)? {
        let parts = identityURL.split(separator: "/")
        guard parts.count >= 3, parts[parts.count - 3] == "id" else { return nil }
        return (String(parts[parts.count - 2]), String(parts[parts.count - 1]))
    }
}

/// Why a token call failed, classified so the caller can pick the contract's answer and decide on retries.
public enum SalesforceFailure: Error, Sendable, Equatable {
    /// Salesforce answered with an OAuth error (`error`, `error_description`).
    case refused(UpstreamDetails)
    /// HTTP 429, or an error naming a rate limit.
    case throttled(retryAfterSeconds: Int, UpstreamDetails)
    /// HTTP 5xx.
    case serverError(status: Int)
    /// A body that is not a token answer.
    case unreadable(status: Int)
    /// The answer's `signature` does not verify with the client secret.
    case badSignature
    /// No answer within the upstream timeout.
    case timeout
    /// The request surely did not reach Salesforce (refused connection, DNS, connect timeout).
    case unreachable
    /// The request may have reached Salesforce but the transfer failed (TLS, reset).
    case transport
}

/// The form fields of one token request.
public enum TokenGrant: Sendable {
    case authorizationCode(code: String, redirectURI: String, codeVerifier: String?)
    case refreshToken(String)
    case jwtBearer(assertion: String)
    case clientCredentials

    /// The metric label.
    public var label: String {
        switch self {
        case .authorizationCode: "authorization_code"
        case .refreshToken: "refresh_token"
        case .jwtBearer: "jwt_bearer"
        case .clientCredentials: "client_credentials"
        }
    }

    /// Whether repeating a call that may have reached Salesforce is harmless. A code is single-use and a rotating
    /// refresh token dies when used, so a repeat could burn it; the JWT and client-credentials grants are stateless.
    var isIdempotent: Bool {
        switch self {
        case .jwtBearer, .clientCredentials: true
        case .authorizationCode, .refreshToken: false
        }
    }
}

/// Calls `{login_url}/services/oauth2/token` and reads Salesforce's answer: a token (no `expires_in`; `issued_at` in
/// milliseconds, a `signature` to verify) or an OAuth error, classified as `SalesforceFailure`.
public struct SalesforceTokenEndpoint: Sendable {
    let http: HTTPClient
    let metrics: Metrics
    let logger: Logger
    let maxAttempts: Int
    let baseBackoffMilliseconds: Int

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

/// Builds the RS256 assertion of the JWT bearer grant.
public enum JWTAssertion {
    /// `iss` client id, `sub` username, `aud` audience, `exp` now + 3 minutes, a random `jti`.
    public static func make(client: Client, now: Date = Date()) throws -> String {
        guard let pem = client.privateKey, let username = client.username else {
            throw GatewayError.invalidRequest("The client has no private_key or username for the JWT bearer grant.")
        }
        let key: _RSA.Signing.PrivateKey
        do { key = try _RSA.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw GatewayError(
                status: 409, code: "client_rejected", message: "The client's private_key cannot be read; replace it.")
        }
        var claims = JSONWriter()
        claims.beginObject()
        claims.field("iss", client.clientID)
        claims.field("sub", username)
        claims.field("aud", client.effectiveAudience)
        claims.field("exp", Int(now.timeIntervalSince1970) + 180)
        claims.field("jti", UUID().uuidString.lowercased())
        claims.endObject()
        let signingInput = Base64URL.encode(Array(#"{"alg":"RS256"}"#.utf8)) + "." + Base64URL.encode(claims.bytes)
        let signature = try key.signature(for: Array(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }
}
