import Foundation

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

struct RawHTTPError: Error, CustomStringConvertible {
    var description: String
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
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError(description: "socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw RawHTTPError(description: "connect to port \(port) failed") }

        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        let request = Array(head.utf8) + body
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw RawHTTPError(description: "write failed") }
            sent += count
        }

        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            guard count > 0 else { throw RawHTTPError(description: "read failed or timed out (errno \(errno))") }
            received += buffer[0..<count]
        }
        var response = try parse(received)
        response.elapsed = clock.now - started
        return response
    }

    static func parse(_ bytes: [UInt8]) throws -> RawResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard
            let end = (0...max(0, bytes.count - 4)).first(where: {
                Array(bytes[$0..<min($0 + 4, bytes.count)]) == separator
            })
        else { throw RawHTTPError(description: "no header end in \(bytes.count) bytes") }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw RawHTTPError(description: "bad status line")
        }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = Array(bytes[(end + 4)...])
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }),
            length <= body.count
        {
            body = Array(body[0..<length])
        }
        return RawResponse(status: status, headers: headers, body: body)
    }
}
