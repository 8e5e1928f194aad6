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
        let text = "{\"error\":" + JSONBody.string(code) + ",\"message\":" + JSONBody.string(message) + "}"
        return json(status: status, Array(text.utf8), headers: headers)
    }
}

/// Small JSON text helpers for hand-built bodies.
public enum JSONBody {
    /// Escapes `s` for use between the quotes of a JSON string (quotes, backslashes, control characters).
    public static func escape(_ s: String) -> String {
        var output = ""
        output.unicodeScalars.reserveCapacity(s.unicodeScalars.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            case "\u{2028}": output += "\\u2028"
            case "\u{2029}": output += "\\u2029"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output
    }

    /// `s` as a quoted JSON string.
    public static func string(_ s: String) -> String {
        "\"" + escape(s) + "\""
    }
}
