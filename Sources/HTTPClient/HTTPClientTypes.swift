internal import Codecs

/// Settings of an `HTTPClient`, with defaults suited to calls to Salesforce's token endpoint.
public struct HTTPClientConfiguration: Sendable {
    /// Longest wait for the TCP (and TLS) connection to be established.
    public var connectTimeout: Duration = .seconds(5)
    /// Longest time a whole call may take, connection included; `HTTPClientRequest.timeout` overrides it.
    public var totalTimeout: Duration = .seconds(15)
    /// Largest response body accepted; larger answers fail with `.responseTooLarge`.
    public var maxResponseBytes: Int = 1 << 20
    /// The `User-Agent` header sent with every request.
    public var userAgent: String = "token-gateway"
    /// How many idle keep-alive connections the client keeps open for reuse (curl's connection cache).
    public var maxCachedConnections: Int = 64

    /// Creates a configuration; every parameter has a documented default.
    public init(
        connectTimeout: Duration = .seconds(5), totalTimeout: Duration = .seconds(15), maxResponseBytes: Int = 1 << 20,
        userAgent: String = "token-gateway"
    ) {
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.maxResponseBytes = maxResponseBytes
        self.userAgent = userAgent
    }
}

/// One outbound HTTP request.
public struct HTTPClientRequest: Sendable {
    /// The method, e.g. `GET` or `POST` (an HTTP token; anything else is refused before sending).
    public var method: String
    /// An absolute `http://` or `https://` URL.
    public var url: String
    /// Header fields to send, in order; names and values must not contain CR, LF or NUL.
    public var headers: [(String, String)]
    /// The request body; sent when not empty (and always, possibly empty, for `POST`).
    public var body: [UInt8]
    /// Overrides `HTTPClientConfiguration.totalTimeout` for this call.
    public var timeout: Duration?

    /// Creates a request.
    public init(
        method: String, url: String, headers: [(String, String)] = [], body: [UInt8] = [], timeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    /// A `POST` with an `application/x-www-form-urlencoded` body built from `fields` by `formEncode(_:)`.
    public static func form(
        url: String, fields: [(String, String)], headers: [(String, String)] = [], timeout: Duration? = nil
    ) -> HTTPClientRequest {
        var allHeaders = headers
        if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            allHeaders.insert(("Content-Type", "application/x-www-form-urlencoded"), at: 0)
        }
        return HTTPClientRequest(
            method: "POST", url: url, headers: allHeaders, body: Array(formEncode(fields).utf8), timeout: timeout)
    }

    /// Encodes fields as `name=value` pairs joined by `&`: RFC 3986 unreserved characters are kept, every other
    /// UTF-8 byte becomes `%XX` (space becomes `%20`, `+` becomes `%2B`).
    public static func formEncode(_ fields: [(String, String)]) -> String {
        Percent.formEncode(fields)
    }
}

/// A complete HTTP response (any status: 4xx and 5xx are responses, not errors).
public struct HTTPClientResponse: Sendable {
    /// The status code, e.g. 200.
    public var status: Int
    /// Header fields of the final response, names as received, in order.
    public var headers: [(String, String)]
    /// The response body, at most `HTTPClientConfiguration.maxResponseBytes` long.
    public var body: [UInt8]

    /// Creates a response (the client builds them; tests and fakes may too).
    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of the first header field named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first(where: { $0.0.lowercased() == wanted })?.1
    }
}
