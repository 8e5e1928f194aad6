import Codecs
import HTTPServer
import Logging
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

// The one place where errors become HTTP answers: each error code's status, the contract's JSON error body, and
// what a database failure or an unexpected error turns into.

extension GatewayError.Code {
    /// The HTTP status the contract gives this code.
    public var status: Int {
        switch self {
        case .invalidRequest, .invalidGrant: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .conflict, .clientRejected, .reauthorizationRequired: 409
        case .payloadTooLarge: 413
        case .unsupportedMediaType: 415
        case .rateLimited, .upstreamRateLimited: 429
        case .internalError: 500
        case .notImplemented: 501
        case .upstreamError: 502
        case .unavailable: 503
        case .upstreamTimeout: 504
        }
    }
}

extension GatewayError {
    /// The HTTP answer for this error: `{"error", "message", "upstream"?}` with its status, `WWW-Authenticate` on
    /// 401 and `Retry-After` when a wait is known.
    public var response: HTTPResponse {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("error", code.rawValue)
        writer.field("message", message)
        if let upstream {
            writer.field("upstream", upstream)
        }
        writer.endObject()
        var headers = HTTPHeaders()
        if code == .unauthorized { headers.add("WWW-Authenticate", "Bearer") }
        if let retryAfterSeconds { headers.add("Retry-After", String(retryAfterSeconds)) }
        return HTTPResponse.json(status: code.status, writer.bytes, headers: headers)
    }
}

extension GatewayError {
    /// The gateway's bodies for the answers the HTTP layer gives on its own (router and server): the contract's
    /// error shape with the codes it has always used.
    @Sendable public static func refusalResponse(_ refusal: HTTPRefusal) -> HTTPResponse {
        let code: Code
        switch refusal {
        case .notFound: code = .notFound
        case .methodNotAllowed: code = .methodNotAllowed
        case .payloadTooLarge: code = .payloadTooLarge
        case .shuttingDown: code = .unavailable
        case .badFraming(let status, _): code = status == 501 ? .notImplemented : .invalidRequest
        case .internalError: code = .internalError
        }
        return GatewayError(code, message: refusal.reason).response
    }
}

extension GatewayAPI {
    /// Any error as an HTTP answer: the contract's errors as they are, a lost database as 503, the rest as a
    /// logged 500.
    static func errorResponse(_ error: any Error, logger: Logger?) -> HTTPResponse {
        if let error = error as? GatewayError { return error.response }
        switch DatabaseFailure(error) {
        case .busy:
            return GatewayError.busy.response
        case .unreachable:
            return GatewayError(.unavailable, message: "The database is unreachable; retry shortly.").response
        case .failed, nil:
            logger?.error("internal error", metadata: ["error": "\(error)"])
            return GatewayError(.internalError, message: "An internal error occurred; it has been logged.").response
        }
    }
}

extension RequestBody {
    /// The request's body as a JSON object, checked as the contract says (413, 415, then 400).
    static func parse(_ request: HTTPRequest, maxBytes: Int) throws(GatewayError) -> RequestBody {
        try parse(
            request.body, contentType: request.headers["Content-Type"], tooLarge: request.bodyTooLarge,
            maxBytes: maxBytes)
    }
}
