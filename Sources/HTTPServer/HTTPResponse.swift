internal import Codecs

/// An HTTP response: status, headers and a body held in memory.
///
/// The server sets `Content-Length` and `X-Request-Id` itself; handler-supplied values of those are ignored.
public struct HTTPResponse: Sendable {
    /// The status code, 100...999.
    public var status: Int
    /// The response headers.
    public var headers: HTTPHeaders
    /// The body bytes.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose body is the given JSON text, with `Content-Type: application/json`.
    public static func json(status: Int, _ json: [UInt8], headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var headers = headers
        headers.replaceOrAdd("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: json)
    }

    /// The API's error shape: `{"error":code,"message":message}` as JSON.
    public static func error(
        status: Int, code: String, message: String, headers: HTTPHeaders = HTTPHeaders()
    ) -> HTTPResponse {
        let text = "{\"error\":" + JSONEscaping.quote(code) + ",\"message\":" + JSONEscaping.quote(message) + "}"
        return json(status: status, Array(text.utf8), headers: headers)
    }
}
