import Foundation

/// One answer of the fake, free of any HTTP server type.
public struct FakeAnswer: Sendable {
    /// The HTTP status.
    public var status: Int
    /// Response headers, in order.
    public var headers: [(String, String)]
    /// The response body.
    public var body: [UInt8]
    /// How long the server must hold the answer back (a latency fault); nil answers at once.
    public var delay: Duration?
    /// Called once the answer has been held back and handed to the server.
    public var completion: (@Sendable () -> Void)?

    /// Creates an answer.
    public init(status: Int, headers: [(String, String)], body: [UInt8], delay: Duration? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
    }

    /// The value of the first header with this name (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    static let noStore = ("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")

    static func json(_ status: Int, _ object: Any, headers: [(String, String)] = []) -> FakeAnswer {
        FakeAnswer(
            status: status, headers: [("Content-Type", "application/json;charset=UTF-8"), noStore] + headers,
            body: Encoding.json(object))
    }

    static func oauth(_ error: OAuthError) -> FakeAnswer {
        json(400, ["error": error.error, "error_description": error.description])
    }

    static func text(_ status: Int, _ text: String, contentType: String = "text/plain;charset=UTF-8") -> FakeAnswer {
        FakeAnswer(status: status, headers: [("Content-Type", contentType), noStore], body: Array(text.utf8))
    }

    /// HTTP 500 with Salesforce's HTML error page (a `serverError` fault).
    static let serverErrorPage = text(
        500, "<html><head><title>Error</title></head><body>An unexpected error occurred.</body></html>",
        contentType: "text/html;charset=UTF-8")

    /// HTTP 429, with `Retry-After` when given (a `throttle` fault).
    static func throttled(retryAfterSeconds: Int?) -> FakeAnswer {
        var answer = text(429, "Too Many Requests")
        if let retryAfterSeconds { answer.headers.append(("Retry-After", String(retryAfterSeconds))) }
        return answer
    }
}

