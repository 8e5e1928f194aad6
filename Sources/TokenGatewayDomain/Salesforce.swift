import Codecs
import Crypto
import Foundation
import _CryptoExtras

/// A successful answer of Salesforce's token endpoint.
public struct SalesforceToken: Sendable, Equatable {
    /// The access token; a secret, never logged.
    public var accessToken: String
    /// The refresh token, when Salesforce issued one; a secret, never logged.
    public var refreshToken: String?
    /// The org's instance URL.
    public var instanceURL: String
    /// The identity URL `.../id/<orgId>/<userId>`.
    public var identityURL: String
    /// The granted scopes, space-separated; nil when Salesforce did not say.
    public var scope: String?
    /// The token type (normally `Bearer`).
    public var tokenType: String
    /// Milliseconds since the epoch, as Salesforce's `issued_at` says.
    public var issuedAtMillis: Int64

    /// The org and user ids from the identity URL `.../id/<orgId>/<userId>`.
    public var orgID: String? { identityParts?.org }
    /// The user id from the identity URL; nil when it does not have that shape.
    public var userID: String? { identityParts?.user }

    private var identityParts: (org: String, user: String)? {
        let parts = identityURL.split(separator: "/")
        guard parts.count >= 3, parts[parts.count - 3] == "id" else { return nil }
        return (String(parts[parts.count - 2]), String(parts[parts.count - 1]))
    }

    /// Creates the value from each of its stored properties.
    public init(
        accessToken: String, refreshToken: String? = nil, instanceURL: String, identityURL: String,
        scope: String? = nil, tokenType: String, issuedAtMillis: Int64
    ) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.instanceURL = instanceURL
        self.identityURL = identityURL
        self.scope = scope
        self.tokenType = tokenType
        self.issuedAtMillis = issuedAtMillis
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
    public var isIdempotent: Bool {
        switch self {
        case .jwtBearer, .clientCredentials: true
        case .authorizationCode, .refreshToken: false
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
            throw GatewayError(.clientRejected, message: "The client's private_key cannot be read; replace it.")
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
