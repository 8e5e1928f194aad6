import Codecs
import Foundation

/// Why introspecting an access token gave no expiry. Holds status codes and Salesforce's error codes only, never
/// the token, the client secret or a response body.
public enum IntrospectionFailure: Error, Sendable, Equatable {
    /// The client has no `client_secret`, which Salesforce's introspection needs: nothing was sent.
    case noClientSecret
    /// Salesforce answered `active: false`: the token is unknown to it, expired or revoked.
    case inactive
    /// Salesforce refused the call with a 4xx, e.g. 401 `invalid_client` (wrong secret) or 429.
    case refused(UpstreamDetails)
    /// HTTP 5xx.
    case serverError(status: Int)
    /// An answer that is not an introspection: not JSON, no boolean `active`, or `active` without a usable `exp`.
    case unreadable(status: Int)
    /// No answer within the timeout.
    case timeout
    /// The request surely did not reach Salesforce (refused connection, DNS, connect timeout).
    case unreachable
    /// The transfer failed after the request may have reached Salesforce.
    case transport

    /// How the metric counts it; nil when no call was made.
    public var outcome: IntrospectionOutcome? {
        switch self {
        case .noClientSecret: nil
        case .inactive: .inactive
        case .refused: .refused
        case .timeout: .timeout
        case .serverError, .unreadable, .unreachable, .transport: .error
        }
    }
}

/// The `outcome` label of `token_gateway_introspections_total`.
public enum IntrospectionOutcome: String, Sendable, CaseIterable {
    /// `active: true` with an `exp`.
    case active
    /// `active: false`.
    case inactive
    /// A 4xx answer (wrong client credentials, throttled).
    case refused
    /// No answer in time.
    case timeout
    /// A 5xx, an unreadable answer, or a failed transfer.
    case error
}

extension Client {
    /// Salesforce's introspection endpoint of this client.
    public var introspectEndpoint: String { loginURL.trimmingSuffix("/") + "/services/oauth2/introspect" }
}

/// The `expires_at` the contract wants for a new access token. Pure.
public enum TokenExpiry {
    /// `issued_at` + `token_ttl_seconds`, or introspection's `exp` when that is earlier; seconds since the epoch.
    /// `introspectedExp` is nil when introspection failed or was not asked, and an `exp` not after `issued_at`
    /// cannot be about this token: both leave the TTL expiry.
    public static func expiresAt(issuedAtMillis: Int64, tokenTTLSeconds: Int, introspectedExp: Int64?) -> Double {
        let issuedAt = Double(issuedAtMillis) / 1000
        let byTTL = issuedAt + Double(tokenTTLSeconds)
        guard let introspectedExp, Double(introspectedExp) > issuedAt else { return byTTL }
        return min(Double(introspectedExp), byTTL)
    }
}
