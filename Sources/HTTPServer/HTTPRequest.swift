internal import Codecs

/// One HTTP request as a handler sees it: the whole (bounded) body has arrived.
public struct HTTPRequest: Sendable {
    /// The method as sent, e.g. "GET" or "POST".
    public var method: String
    /// The path as received, still percent-encoded and without the query, e.g. "/tenants/acme".
    public var path: String
    /// The raw query without "?", "" when there is none.
    public var query: String
    /// The request headers.
    public var headers: HTTPHeaders
    /// The body; empty when `bodyTooLarge`.
    public var body: [UInt8]
    /// True when the body exceeded `HTTPServerConfiguration.maxBodyBytes`; the rest was discarded unread.
    public var bodyTooLarge: Bool
    /// The request's `X-Request-Id` when it is 1...128 characters of `[A-Za-z0-9._:-]`, else a fresh random id.
    public var requestID: String
    /// The peer's IP address, "" when unknown.
    public var remoteAddress: String

    /// Creates a request, for unit tests of routers and handlers.
    public init(
        method: String, path: String, query: String = "", headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
        requestID: String = "test"
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyTooLarge = false
        self.requestID = requestID
        self.remoteAddress = ""
    }

    /// The query as form-decoded `(name, value)` pairs in order ('+' is a space, `%XX` is decoded).
    public func queryItems() -> [(String, String)] {
        Percent.formPairs(query)
    }
}
