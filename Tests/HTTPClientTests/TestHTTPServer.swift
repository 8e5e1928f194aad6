import Foundation
import Synchronization
import TestSupport
import Testing

/// A tiny HTTP/1.1 server on POSIX sockets for the client's tests: one accept thread, one thread per connection,
/// keep-alive, Content-Length bodies, answers delayed per path, counts of accepted connections, recorded requests.
///
/// Routes: `/delay/<ms>` (200 after a delay), `/echo` (the body back), `/status/<code>`, `/headers` (201 with
/// custom fields), `/bytes/<n>` (n bytes with Content-Length), `/stream/<n>` (n bytes, no length, then close),
/// `/redirect` (302), anything else 200 "ok". A first byte that cannot start a request line gets a 400 and a close.
final class TestHTTPServer: @unchecked Sendable {
    // Mutable state sits in `state`; `listener` and `port` are fixed after init.

    struct Request: Sendable {
        var method: String
        var path: String
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first(where: { $0.0.lowercased() == name.lowercased() })?.1
        }
    }

    private struct State {
        var accepted = 0
        var requests: [Request] = []
        var stopping = false
        var openConnections: Set<Int32> = []
    }

    let port: Int
    private let listener: Int32
    private let state = Mutex(State())
    private let threads = DispatchGroup()

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw TestSupportError("bind/listen on 127.0.0.1:0 failed")
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        spawn { [self] in acceptLoop() }
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    var url: String { "http://127.0.0.1:\(port)" }

    var acceptedConnections: Int { state.withLock { $0.accepted } }
    var requests: [Request] { state.withLock { $0.requests } }

    /// Stops accepting, ends every connection (delayed answers included) and joins all threads (bounded wait).
    func stop() {
        let connections = state.withLock { state in
            state.stopping = true
            return state.openConnections
        }
        for fd in connections { shutdown(fd, Int32(SHUT_RDWR)) }
        if threads.wait(timeout: .now() + 5) == .timedOut {
            Issue.record("test HTTP server threads did not stop within 5 s")
        }
        close(listener)
    }

    private var stopping: Bool { state.withLock { $0.stopping } }

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        threads.enter()
        let thread = Thread { [threads] in
            body()
            threads.leave()
        }
        thread.start()
    }

    private func acceptLoop() {
        while !stopping {
            var pollfd = Glibc.pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 20) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let registered = state.withLock { state in
                guard !state.stopping else { return false }
                state.accepted += 1
                state.openConnections.insert(client)
                return true
            }
            guard registered else {
                close(client)
                break
            }
            spawn { [self] in serve(client) }
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            state.withLock { _ = $0.openConnections.remove(fd) }
            close(fd)
        }
        var buffer: [UInt8] = []
        while true {
            guard let request = readRequest(fd, &buffer) else { return }
            state.withLock { $0.requests.append(request) }
            guard let (response, keepAlive) = answer(request) else { return }
            guard writeAll(fd, response) else { return }
            if !keepAlive || request.header("Connection")?.lowercased() == "close" { return }
        }
    }

    /// Reads one request (head and Content-Length body); nil when the peer closed, the server stops, or the bytes
    /// are not HTTP (then a 400 is sent first).
    private func readRequest(_ fd: Int32, _ buffer: inout [UInt8]) -> Request? {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if let first = buffer.first, !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(first) {
                _ = writeAll(
                    fd, Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
                return nil
            }
            headEnd = buffer.firstRange(of: separator)?.upperBound
            if headEnd == nil && !readMore(fd, &buffer) { return nil }
        }
        guard let headEnd else { return nil }
        let head = String(decoding: buffer[..<(headEnd - 4)], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3 else { return nil }
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var request = Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, body: [])
        let length = Int(request.header("Content-Length") ?? "0") ?? 0
        while buffer.count < headEnd + length {
            if !readMore(fd, &buffer) { return nil }
        }
        request.body = Array(buffer[headEnd..<(headEnd + length)])
        buffer.removeFirst(headEnd + length)
        return request
    }

    private func readMore(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !stopping {
            var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 20) > 0 else { continue }
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { return false }
            buffer.append(contentsOf: chunk[..<count])
            return true
        }
        return false
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// The bytes to send and whether the connection stays open; nil to drop the connection (server stopping).
    private func answer(_ request: Request) -> ([UInt8], Bool)? {
        let parts = request.path.split(separator: "?")[0].split(separator: "/").map(String.init)
        func response(_ status: Int, _ reason: String, _ headers: [(String, String)] = [], _ body: [UInt8])
            -> [UInt8]
        {
            var head = "HTTP/1.1 \(status) \(reason)\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            head += "Content-Length: \(body.count)\r\n\r\n"
            return Array(head.utf8) + body
        }
        switch (parts.first, parts.count > 1 ? parts[1] : nil) {
        case ("delay", let milliseconds?):
            let deadline = Date().addingTimeInterval(Double(Int(milliseconds) ?? 0) / 1000)
            while Date() < deadline {
                if stopping { return nil }
                usleep(5_000)
            }
            return (response(200, "OK", [], Array("slept \(milliseconds)".utf8)), true)
        case ("echo", _):
            return (response(200, "OK", [("Content-Type", "application/octet-stream")], request.body), true)
        case ("status", let code?):
            return (response(Int(code) ?? 500, "Status", [], Array("status \(code)".utf8)), true)
        case ("headers", _):
            let headers = [
                ("X-Custom-Header", "Value-1"), ("x-lower", "two"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
            ]
            return (response(201, "Created", headers, Array("hello".utf8)), true)
        case ("bytes", let count?):
            return (response(200, "OK", [], [UInt8](repeating: UInt8(ascii: "a"), count: Int(count) ?? 0)), true)
        case ("stream", let count?):
            let head = Array("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".utf8)
            return (head + [UInt8](repeating: UInt8(ascii: "b"), count: Int(count) ?? 0), false)
        case ("redirect", _):
            return (response(302, "Found", [("Location", "/echo")], []), true)
        default:
            return (response(200, "OK", [], Array("ok".utf8)), true)
        }
    }
}

/// A listening socket whose accept queue is full and never drained, so new connections hang in the handshake:
/// the way to provoke a connect timeout locally.
final class BlackholeListener {
    let port: Int
    private var sockets: [Int32] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed") }
        sockets.append(fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0, listen(fd, 0) == 0 else {
            Glibc.close(fd)
            throw TestSupportError("bind/listen failed")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        // Fill the accept queue (backlog 0 holds one connection); later SYNs are dropped and connect() hangs.
        for _ in 0..<3 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard filler >= 0 else { continue }
            sockets.append(filler)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, length) }
            }
        }
        usleep(50_000)  // let the fillers' handshakes complete
    }

    func close() {
        for fd in sockets { Glibc.close(fd) }
        sockets.removeAll()
    }
}
