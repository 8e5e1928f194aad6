import Foundation
import TestSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A response read off the wire.
struct RawResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    /// Time from connect to the last byte read, measured on the request's own thread (no scheduling delays).
    var elapsed: Duration = .zero

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A minimal HTTP/1.1 client over a plain socket (one request per connection, bounded by socket timeouts), so the
/// fake is tested over real HTTP without depending on the gateway's own client. Each request runs on a thread of
/// its own: the cooperative pool stays free for the server's deferred answers.
enum RawHTTP {
    static func send(
        port: Int, method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = [],
        timeoutSeconds: Int = 10
    ) async throws -> RawResponse {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    with: Result {
                        try blockingSend(
                            port: port, method: method, path: path, headers: headers, body: body,
                            timeoutSeconds: timeoutSeconds)
                    })
            }
            thread.start()
        }
    }

    static func form(port: Int, _ path: String, _ fields: [(String, String)]) async throws -> RawResponse {
        let body = fields.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
        return try await send(
            port: port, method: "POST", path: path,
            headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(body.utf8))
    }

    static func json(port: Int, _ method: String, _ path: String, _ json: String = "") async throws -> RawResponse {
        try await send(
            port: port, method: method, path: path, headers: [("Content-Type", "application/json")],
            body: Array(json.utf8))
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func blockingSend(
        port: Int, method: String, path: String, headers: [(String, String)], body: [UInt8], timeoutSeconds: Int
    ) throws -> RawResponse {
        let clock = ContinuousClock()
        let started = clock.now
        let connection = try RawConnection(port: port, timeoutSeconds: timeoutSeconds)
        var head = headers + [("Connection", "close")]
        if body.isEmpty && method != "POST" && method != "PUT" { head.append(("Content-Length", "0")) }
        let response = try connection.request(method, path, headers: head, body: body)
        return RawResponse(
            status: response.status, headers: response.headers, body: response.body, elapsed: clock.now - started)
    }
}
