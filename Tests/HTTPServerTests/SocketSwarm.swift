import Foundation
import Synchronization
import TestSupport

/// Many raw client connections to 127.0.0.1, driven from one thread with poll(2): for slow and silent clients.
/// Every wait is bounded by its argument.
final class SocketSwarm: @unchecked Sendable {
    // @unchecked: used by one thread at a time (each test hands it from step to step sequentially).
    private var sockets: [Int32]
    /// When each connection was seen closed by the server, nil while it is open.
    private(set) var closedAt: [ContinuousClock.Instant?]

    /// Connects `count` sockets one after another, `pause` apart (accept order then follows connect order).
    init(count: Int, port: Int, pause: Duration = .zero) throws {
        sockets = []
        closedAt = []
        sockets.reserveCapacity(count)
        for _ in 0..<count {
            let fd = try connectLoopback(port: port)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            sockets.append(fd)
            closedAt.append(nil)
            if pause > .zero { usleep(UInt32(pause / .microseconds(1))) }
        }
    }

    deinit {
        for fd in sockets { close(fd) }
    }

    var count: Int { sockets.count }
    var openCount: Int { closedAt.filter { $0 == nil }.count }
    func isOpen(_ index: Int) -> Bool { closedAt[index] == nil }

    /// Sends `bytes` on every connection still open; one the server has closed is marked closed.
    func sendToOpen(_ bytes: [UInt8]) {
        for index in sockets.indices where closedAt[index] == nil {
            let sent = bytes.withUnsafeBytes { send(sockets[index], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK { closedAt[index] = .now }
        }
    }

    /// Waits up to `timeout` for the server to close connections, marking each one it has closed.
    func collectClosures(waiting timeout: Duration) {
        let deadline = ContinuousClock.now + timeout
        repeat {
            let open = sockets.indices.filter { closedAt[$0] == nil }
            if open.isEmpty { return }
            var polled = open.map { pollfd(fd: sockets[$0], events: Int16(POLLIN), revents: 0) }
            let remaining = max(0, Int(((deadline - .now) / .milliseconds(1)).rounded(.up)))
            let ready = poll(&polled, nfds_t(polled.count), Int32(min(remaining, 100)))
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            for (slot, index) in open.enumerated() where polled[slot].revents != 0 {
                // Drain whatever arrived; end of stream or an error means the server closed the connection.
                while true {
                    let count = chunk.withUnsafeMutableBytes { recv(sockets[index], $0.baseAddress, $0.count, 0) }
                    if count > 0 { continue }
                    if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { closedAt[index] = .now }
                    break
                }
            }
        } while ContinuousClock.now < deadline
    }
}

/// Raises this process's soft open-file limit to its hard limit when it is below `needed`; returns the soft
/// limit in force afterwards (the caller checks it is enough).
func raiseOpenFileLimit(to needed: Int) -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < rlim_t(needed) {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return Int(clamping: limit.rlim_cur)
}

/// A flag one thread sets and others read.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// One `GET /healthz` on a new connection; its status (0 when it failed) and how long it took.
func probeHealth(port: Int, timeoutSeconds: Int = 3) -> (status: Int, elapsed: Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    do {
        let connection = try RawConnection(port: port, timeoutSeconds: timeoutSeconds)
        let response = try connection.request("GET", "/healthz")
        return (response.status, clock.now - start)
    } catch {
        return (0, clock.now - start)
    }
}
