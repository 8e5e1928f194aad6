import HTTPServer

/// What Salesforce said when it refused a call, passed on to the caller as `upstream` in the error body.
public struct UpstreamDetails: Sendable, Equatable {
    public var status: Int
    public var error: String?
    public var errorDescription: String?
}

/// An error the gateway answers with: a status, one of the contract's error codes and a sentence a person can act on.
/// Messages never carry secrets; callers build them from field names and fixed text only.
public struct GatewayError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var upstream: UpstreamDetails?
    public var retryAfterSeconds: Int?

    public init(
        status: Int, code: String, message: String, upstream: UpstreamDetails? = nil, retryAfterSeconds: Int? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.upstream = upstream
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func invalidRequest(_ message: String) -> GatewayError {
        GatewayError(status: 400, code: "invalid_request", message: message)
    }
    public static func notFound(_ message: String) -> GatewayError {
        GatewayError(status: 404, code: "not_found", message: message)
    }
    public static func conflict(_ message: String) -> GatewayError {
        GatewayError(status: 409, code: "conflict", message: message)
    }
    public static let unauthorized = GatewayError(
        status: 401, code: "unauthorized", message: "Send a valid credential as 'Authorization: Bearer <token>'.")
    public static let adminOnly = GatewayError(
        status: 403, code: "forbidden", message: "This route needs the admin token; a tenant API key cannot call it.")
    public static let tenantKeyOnly = GatewayError(
        status: 403, code: "forbidden", message: "This route needs a tenant API key; the admin token cannot call it.")
    public static let unavailable = GatewayError(
        status: 503, code: "unavailable",
        message: "The database is unreachable and no cached token can serve this request; retry shortly.")
    /// Every database connection of this replica stayed busy for the pool's acquire timeout: not an outage.
    public static let busy = GatewayError(
        status: 503, code: "unavailable",
        message: "The gateway's database connections are all busy; retry in a second.", retryAfterSeconds: 1)
    public static func payloadTooLarge(limit: Int) -> GatewayError {
        GatewayError(status: 413, code: "payload_too_large", message: "The request body is larger than \(limit) bytes.")
    }
    public static let unsupportedMediaType = GatewayError(
        status: 415, code: "unsupported_media_type", message: "Send the body as 'Content-Type: application/json'.")

    /// The HTTP answer for this error.
    public var response: HTTPResponse {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("error", code)
        writer.field("message", message)
        if let upstream {
            writer.field("upstream", upstream)
        }
        writer.endObject()
        var headers = HTTPHeaders()
        if status == 401 { headers.add("WWW-Authenticate", "Bearer") }
        if let retryAfterSeconds { headers.add("Retry-After", String(retryAfterSeconds)) }
        return HTTPResponse.json(status: status, writer.bytes, headers: headers)
    }
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

extension GatewayError {
    /// The gateway's bodies for the answers the HTTP layer gives on its own (router and server): the contract's
    /// error shape with the codes it has always used.
    @Sendable public static func refusalResponse(_ refusal: HTTPRefusal) -> HTTPResponse {
        let code: String
        switch refusal {
        case .notFound: code = "not_found"
        case .methodNotAllowed: code = "method_not_allowed"
        case .payloadTooLarge: code = "payload_too_large"
        case .shuttingDown: code = "unavailable"
        case .badFraming(let status, _): code = status == 501 ? "not_implemented" : "invalid_request"
        case .internalError: code = "internal_error"
        }
        return GatewayError(status: refusal.status, code: code, message: refusal.reason).response
    }
}
