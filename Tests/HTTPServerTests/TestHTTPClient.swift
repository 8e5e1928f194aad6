import Foundation
import Synchronization

/// A response as read off the wire by `RawConnection`.
struct WireResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as a JSON object, nil if it is not one.
    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}

extension WireResponse {
    /// The status line and headers of `head` (the bytes before the blank line); the body is left empty.
    init(head: some Collection<UInt8>) throws {
        let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw ClientError("bad status line: \(lines[0])")
        }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        self.init(status: status, headers: headers, body: [])
    }
}

struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A blocking HTTP/1.1 client on one TCP connection, so keep-alive is visible: several requests go out
/// on the same socket. Every read and write is bounded by a socket timeout.
final class RawConnection: @unchecked Sendable {
    // @unchecked: used by one thread at a time (each test hands it from step to step sequentially).
    let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to 127.0.0.1:port; throws `ClientError("refused")` when the port refuses.
    init(port: Int, timeoutSeconds: Int = 10) throws {
        self.fd = try connectLoopback(port: port) { fd in
            var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    deinit { close(fd) }

    /// Writes one request; adds Host and Content-Length.
    func write(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try writeAll(Array(head.utf8) + body)
    }

    func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw ClientError("send failed: errno \(errno)") }
            offset += sent
        }
    }

    /// Reads one response (Content-Length framed, or up to EOF when the server closes).
    func readResponse(method: String = "GET") throws -> WireResponse {
        try fill { $0.firstRange(of: [13, 10, 13, 10]) != nil }
        guard let headEnd = buffer.firstRange(of: [13, 10, 13, 10]) else { throw ClientError("no header end") }
        var response = try WireResponse(head: buffer[..<headEnd.lowerBound])
        buffer.removeSubrange(..<headEnd.upperBound)
        let status = response.status
        if method == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
            return response
        }
        if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText) else { throw ClientError("bad Content-Length") }
            try fill { $0.count >= length }
            response.body = Array(buffer[..<length])
            buffer.removeSubrange(..<length)
        } else {
            while try readMore() {}
            response.body = buffer
            buffer = []
        }
        return response
    }

    /// One request and its response.
    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws -> WireResponse {
        try write(method, target, headers: headers, body: body)
        return try readResponse(method: method)
    }

    /// True when the server has closed the connection (EOF) within the timeout.
    func isClosedByPeer() -> Bool {
        (try? readMore()) == false
    }

    /// True when the server has already closed the connection (end of stream or reset waiting); never blocks.
    func isClosedNow() -> Bool {
        var polled = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&polled, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN)
    }

    /// Reads until the server closes the connection or the socket timeout passes; returns the bytes read and
    /// whether the connection was closed (false: the read timed out with the connection still open).
    func readUntilClosed() -> (bytes: [UInt8], closed: Bool) {
        var closed = false
        while true {
            do {
                if try !readMore() {
                    closed = true
                    break
                }
            } catch {
                // A reset counts as closed; a timeout leaves the connection open.
                closed = (error as? ClientError)?.description != "timed out reading"
                break
            }
        }
        defer { buffer = [] }
        return (buffer, closed)
    }

    private func fill(until done: ([UInt8]) -> Bool) throws {
        while !done(buffer) {
            guard try readMore() else { throw ClientError("connection closed by the server") }
        }
    }

    private func readMore() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffer.append(contentsOf: chunk[..<count])
            return true
        }
        if count == 0 { return false }
        throw ClientError(errno == EAGAIN ? "timed out reading" : "recv failed: errno \(errno)")
    }
}

/// A TCP socket connected to 127.0.0.1:port, `configure`d before it connects; throws `ClientError("refused")`
/// when the port refuses.
func connectLoopback(port: Int, configure: (Int32) -> Void = { _ in }) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ClientError("socket() failed: errno \(errno)") }
    configure(fd)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    if result != 0 {
        let code = errno
        close(fd)
        throw ClientError(code == ECONNREFUSED ? "refused" : "connect failed: errno \(code)")
    }
    return fd
}
