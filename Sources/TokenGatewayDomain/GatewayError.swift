import Codecs

/// What Salesforce said when it refused a call, passed on to the caller as `upstream` in the error body.
public struct UpstreamDetails: Sendable, Equatable {
    /// Salesforce's HTTP status.
    public var status: Int
    /// Salesforce's `error` code, when it sent one.
    public var error: String?
    /// Salesforce's `error_description`, when it sent one.
    public var errorDescription: String?

    /// Creates the value from each of its stored properties.
    public init(status: Int, error: String? = nil, errorDescription: String? = nil) {
        self.status = status
        self.error = error
        self.errorDescription = errorDescription
    }
}

/// An error the gateway answers with: one of the contract's error codes and a sentence a person can act on. It
/// carries no HTTP status: the HTTP API maps each code to its status in one table (`ErrorResponses.swift`).
/// Messages never carry secrets; callers build them from field names and fixed text only.
public struct GatewayError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The contract's error codes (the `error` member of every error body).
    public enum Code: String, Sendable, CaseIterable {
        /// The request is malformed or names something inconsistent.
        case invalidRequest = "invalid_request"
        /// No valid credential was sent.
        case unauthorized
        /// The credential is valid but cannot call this route.
        case forbidden
        /// The named resource does not exist.
        case notFound = "not_found"
        /// The route exists but not for this method.
        case methodNotAllowed = "method_not_allowed"
        /// The resource already exists, or is in a state that refuses the change.
        case conflict
        /// The request's framing uses a transfer coding the gateway does not serve (set by the HTTP layer).
        case notImplemented = "not_implemented"
        /// The body is over the configured limit.
        case payloadTooLarge = "payload_too_large"
        /// The body is not JSON.
        case unsupportedMediaType = "unsupported_media_type"
        /// The caller is over one of the gateway's own limits.
        case rateLimited = "rate_limited"
        /// Salesforce refused an authorization code.
        case invalidGrant = "invalid_grant"
        /// Salesforce refused the connected app itself (id, secret, key or login URL).
        case clientRejected = "client_rejected"
        /// The connection's grant is dead: a person must authorize again.
        case reauthorizationRequired = "reauthorization_required"
        /// Salesforce is throttling token requests.
        case upstreamRateLimited = "upstream_rate_limited"
        /// Salesforce failed or could not be reached.
        case upstreamError = "upstream_error"
        /// Salesforce did not answer in time.
        case upstreamTimeout = "upstream_timeout"
        /// The gateway cannot serve the request now (database down or busy, shutting down).
        case unavailable
        /// A fault of the gateway itself; it has been logged.
        case internalError = "internal_error"
    }

    /// Which error this is.
    public var code: Code
    /// A sentence a person can act on; never a secret.
    public var message: String
    /// What Salesforce said, when the error comes from a Salesforce answer.
    public var upstream: UpstreamDetails?
    /// How long the caller should wait before retrying, when known.
    public var retryAfterSeconds: Int?

    /// An error with its code, message and optional upstream details and retry hint.
    public init(_ code: Code, message: String, upstream: UpstreamDetails? = nil, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.upstream = upstream
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// `code: message`, for logs.
    public var description: String { "\(code.rawValue): \(message)" }

    /// An `invalid_request` error with `message`.
    public static func invalidRequest(_ message: String) -> GatewayError {
        GatewayError(.invalidRequest, message: message)
    }
    /// A `not_found` error with `message`.
    public static func notFound(_ message: String) -> GatewayError {
        GatewayError(.notFound, message: message)
    }
    /// A `conflict` error with `message`.
    public static func conflict(_ message: String) -> GatewayError {
        GatewayError(.conflict, message: message)
    }
    /// No valid credential in the `Authorization` header.
    public static let unauthorized = GatewayError(
        .unauthorized, message: "Send a valid credential as 'Authorization: Bearer <token>'.")
    /// A tenant API key called an admin route.
    public static let adminOnly = GatewayError(
        .forbidden, message: "This route needs the admin token; a tenant API key cannot call it.")
    /// The admin token called a route that needs a tenant API key.
    public static let tenantKeyOnly = GatewayError(
        .forbidden, message: "This route needs a tenant API key; the admin token cannot call it.")
    /// The database is unreachable and no cached token can answer.
    public static let unavailable = GatewayError(
        .unavailable,
        message: "The database is unreachable and no cached token can serve this request; retry shortly.")
    /// Every database connection of this replica stayed busy for the pool's acquire timeout: not an outage.
    public static let busy = GatewayError(
        .unavailable,
        message: "The gateway's database connections are all busy; retry in a second.", retryAfterSeconds: 1)
    /// The body is over `limit` bytes.
    public static func payloadTooLarge(limit: Int) -> GatewayError {
        GatewayError(.payloadTooLarge, message: "The request body is larger than \(limit) bytes.")
    }
    /// The body was not sent as `application/json`.
    public static let unsupportedMediaType = GatewayError(
        .unsupportedMediaType, message: "Send the body as 'Content-Type: application/json'.")
}

extension JSONWriter {
    /// Writes what Salesforce said as the member `key`: `{"status", "error", "error_description"}`.
    public mutating func field(_ key: String, _ upstream: UpstreamDetails) {
        beginObject(key)
        field("status", upstream.status)
        field("error", upstream.error)
        field("error_description", upstream.errorDescription)
        endObject()
    }
}
