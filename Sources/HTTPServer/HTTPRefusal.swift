/// An answer the HTTP layer gives on its own, before or instead of a route: the application decides its body
/// (`HTTPServerConfiguration.refusalResponse`, `Router(refusals:)`), the server only its status and framing.
public enum HTTPRefusal: Sendable, Equatable {
    /// 404: no route serves the path.
    case notFound
    /// 405: routes serve the path, with other methods; the server adds `Allow` with `allow` joined by ", ".
    case methodNotAllowed(method: String, allow: [String])
    /// 413: the body is larger than `limit` bytes (for handlers that see `HTTPRequest.bodyTooLarge`).
    case payloadTooLarge(limit: Int)
    /// 503: the server is shutting down and cannot finish a deferred answer.
    case shuttingDown
    /// 400 or 501: the request's framing is ambiguous or unsupported (see `RequestFraming`); `reason` is for people.
    /// The server adds `Connection: close`.
    case badFraming(status: Int, reason: String)
    /// 500: the server could not queue the handler's answer.
    case internalError

    /// The status code of the refusal.
    public var status: Int {
        switch self {
        case .notFound: 404
        case .methodNotAllowed: 405
        case .payloadTooLarge: 413
        case .shuttingDown: 503
        case .badFraming(let status, _): status
        case .internalError: 500
        }
    }

    /// A short text for people, the same whatever the application's body format.
    public var reason: String {
        switch self {
        case .notFound: "No resource at this path."
        case .methodNotAllowed(let method, let allow):
            "\(method) is not allowed here; use \(allow.joined(separator: " or "))."
        case .payloadTooLarge(let limit): "The request body is larger than \(limit) bytes."
        case .shuttingDown: "The server is shutting down; retry on another instance."
        case .badFraming(_, let reason): reason
        case .internalError: "The server could not build its answer."
        }
    }

    /// The default bodies: the status and `reason` as plain text, with no application's error format.
    @Sendable public static func plainText(_ refusal: HTTPRefusal) -> HTTPResponse {
        HTTPResponse(
            status: refusal.status, headers: ["Content-Type": "text/plain; charset=utf-8"],
            body: Array((refusal.reason + "\n").utf8))
    }

    /// `response` with the headers this refusal always carries (`Allow`, `Connection: close`), whatever the body.
    func completing(_ response: HTTPResponse) -> HTTPResponse {
        var response = response
        response.status = status
        switch self {
        case .methodNotAllowed(_, let allow): response.headers.replaceOrAdd("Allow", allow.joined(separator: ", "))
        case .badFraming: response.headers.replaceOrAdd("Connection", "close")
        default: break
        }
        return response
    }
}
