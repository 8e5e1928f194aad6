internal import CMicroHTTPD
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An HTTP/1.1 server on libmicrohttpd: a pool of epoll worker threads answers requests through an
/// `HTTPHandler`; `.deferred` answers suspend their connection instead of holding a worker.
public final class HTTPServer: Sendable {
    private enum Lifecycle {
        case idle
        case running(Daemon)
        case stopping
        case stopped
    }

    private let configuration: HTTPServerConfiguration
    private let core: ServerCore
    private let logger: Logger
    private let lifecycle = Mutex(Lifecycle.idle)
    private let boundPort = Atomic<Int>(0)

    /// Creates a server; nothing is bound until `start()`.
    public init(configuration: HTTPServerConfiguration, handler: some HTTPHandler, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let watchdog = ConnectionWatchdog(
            timeouts: ConnectionDeadlines.Timeouts(
                header: .seconds(configuration.headerTimeoutSeconds),
                idle: .seconds(configuration.connectionTimeoutSeconds)),
            limit: configuration.maxConnections, logger: logger)
        self.core = ServerCore(
            handler: handler, logger: logger, maxBodyBytes: configuration.maxBodyBytes, watchdog: watchdog,
            refusalResponse: configuration.refusalResponse)
    }

    /// The bound port once `start()` has returned (the chosen one when the configuration says 0).
    public var port: Int { boundPort.load(ordering: .acquiring) }

    /// Requests that have started and not yet completed (for tests and metrics).
    var activeRequestCount: Int { core.activeRequests.load(ordering: .relaxed) }

    /// TCP connections open now (for tests).
    var openConnectionCount: Int { core.watchdog.openCount }

    /// Binds the configured address and starts serving on libmicrohttpd's worker threads.
    public func start() throws {
        try lifecycle.withLock { state in
            guard case .idle = state else { throw HTTPServerError("start", "the server was already started") }
            let daemon = try startDaemon()
            do { try core.watchdog.start() } catch {
                daemon.stop()
                throw error
            }
            boundPort.store(Int(tgw_mhd_bound_port(daemon.pointer)), ordering: .releasing)
            state = .running(daemon)
        }
        logger.info("HTTP server listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
    }

    /// Stops accepting connections, lets in-flight requests finish for up to `gracePeriod`, answers requests
    /// still suspended with `503 unavailable`, then stops the daemon. Calling it again waits for the first call.
    public func shutdown(gracePeriod: Duration) async {
        let daemon: Daemon? = lifecycle.withLock { state in
            switch state {
            case .running(let daemon):
                state = .stopping
                return daemon
            case .idle:
                state = .stopped
                return nil
            case .stopping, .stopped:
                return nil
            }
        }
        guard let daemon else {
            while case .stopping = lifecycle.withLock({ $0 }) {
                if !(await Self.pause()) { break }
            }
            return
        }
        core.draining.store(true, ordering: .relaxed)
        daemon.quiesce()
        let clock = ContinuousClock()
        let deadline = clock.now + gracePeriod
        while core.activeRequests.load(ordering: .relaxed) > 0 && clock.now < deadline {
            if !(await Self.pause()) { break }
        }
        let failed = core.failSuspended()
        if !failed.isEmpty {
            logger.warning("answered suspended requests with 503 at shutdown", metadata: ["count": "\(failed.count)"])
            // Give the 503s a moment to reach their clients before the daemon closes every socket.
            let flushDeadline = clock.now + .seconds(2)
            while failed.contains(where: { !$0.state.withLock(\.finished) }) && clock.now < flushDeadline {
                if !(await Self.pause()) { break }
            }
        }
        daemon.stop()
        lifecycle.withLock { $0 = .stopped }
        logger.info("HTTP server stopped")
    }

    /// Sleeps a few milliseconds; false when the task was cancelled (the caller then stops waiting).
    private static func pause() async -> Bool {
        do {
            try await Task.sleep(for: .milliseconds(5))
            return true
        } catch {
            return false
        }
    }

    /// The connections that fit the process's open-file limit (raised to its hard limit if need be), handed to
    /// the watchdog; a warning when that is fewer than configured.
    private func connectionBudget() -> ConnectionBudget {
        let wanted = ConnectionBudget(maxConnections: configuration.maxConnections, openFileLimit: .max)
        let budget = ConnectionBudget(
            maxConnections: configuration.maxConnections,
            openFileLimit: OpenFileLimit.raise(toFit: wanted.hardCap + ConnectionBudget.reserved))
        if budget.kept < configuration.maxConnections {
            logger.warning(
                "connection limit lowered to fit the open-file limit (raise `ulimit -n`)",
                metadata: ["configured": "\(configuration.maxConnections)", "kept": "\(budget.kept)"])
        }
        core.watchdog.setLimit(budget.kept)
        return budget
    }

    private func startDaemon() throws -> Daemon {
        let configuration = self.configuration
        guard (0...65535).contains(configuration.port) else {
            throw HTTPServerError("start", "port \(configuration.port) is not in 0...65535")
        }
        guard configuration.threads >= 1, configuration.maxConnections >= 1,
            configuration.connectionTimeoutSeconds >= 1, configuration.headerTimeoutSeconds >= 1,
            configuration.maxBodyBytes >= 0
        else {
            throw HTTPServerError(
                "start", "threads, maxConnections and the timeouts must be positive, maxBodyBytes not negative")
        }
        let budget = connectionBudget()
        var address = sockaddr_storage()
        let isIPv6: Bool
        var ipv4 = sockaddr_in()
        var ipv6 = sockaddr_in6()
        if inet_pton(AF_INET, configuration.host, &ipv4.sin_addr) == 1 {
            ipv4.sin_family = sa_family_t(AF_INET)
            ipv4.sin_port = UInt16(configuration.port).bigEndian
            withUnsafeMutableBytes(of: &address) { target in
                withUnsafeBytes(of: ipv4) { target.copyMemory(from: $0) }
            }
            isIPv6 = false
        } else if inet_pton(AF_INET6, configuration.host, &ipv6.sin6_addr) == 1 {
            ipv6.sin6_family = sa_family_t(AF_INET6)
            ipv6.sin6_port = UInt16(configuration.port).bigEndian
            withUnsafeMutableBytes(of: &address) { target in
                withUnsafeBytes(of: ipv6) { target.copyMemory(from: $0) }
            }
            isIPv6 = true
        } else {
            throw HTTPServerError("start", "host \"\(configuration.host)\" is not an IPv4 or IPv6 address")
        }

        // Unmanaged: libmicrohttpd gets `core` unretained as every callback's `cls`; the Daemon object keeps
        // `core` alive until MHD_stop_daemon has returned, after which no callback runs.
        let cls = Unmanaged.passUnretained(core).toOpaque()
        core.lastDaemonMessage.withLock { $0 = nil }
        let pointer: OpaquePointer? = withUnsafeMutablePointer(to: &address) { addressPointer in
            // The logger goes first: libmicrohttpd reports options given before it through its default logger.
            var options: [MHD_OptionItem] = [
                tgw_mhd_option_logger(ServerCore.daemonLog, cls),
                MHD_OptionItem(option: .CONNECTION_LIMIT, value: budget.hardCap, ptr_value: nil),
                MHD_OptionItem(option: .LISTEN_BACKLOG_SIZE, value: budget.listenBacklog, ptr_value: nil),
                MHD_OptionItem(
                    option: .CONNECTION_TIMEOUT, value: configuration.connectionTimeoutSeconds,
                    ptr_value: nil),
                MHD_OptionItem(option: .SOCK_ADDR, value: 0, ptr_value: UnsafeMutableRawPointer(addressPointer)),
                tgw_mhd_option_notify_completed(ServerCore.requestCompleted, cls),
                tgw_mhd_option_notify_connection(ServerCore.notifyConnection, cls),
                tgw_mhd_option_uri_log(ServerCore.uriLog, cls),
            ]
            if configuration.threads > 1 {
                options.append(
                    MHD_OptionItem(option: .THREAD_POOL_SIZE, value: configuration.threads, ptr_value: nil))
            }
            options.append(MHD_OptionItem(option: .END, value: 0, ptr_value: nil))
            return options.withUnsafeMutableBufferPointer { buffer in
                tgw_mhd_start_daemon(
                    tgw_mhd_daemon_flags(isIPv6 ? 1 : 0), UInt16(configuration.port), ServerCore.accessHandler, cls,
                    buffer.baseAddress)
            }
        }
        let reason = core.lastDaemonMessage.withLock { $0 } ?? "libmicrohttpd could not start"
        let daemon = try check(pointer, "start", reason: "\(reason) (\(configuration.host):\(configuration.port))")
        return Daemon(pointer: daemon, core: core)
    }
}

/// Owns one `MHD_Daemon*` and stops it exactly once (in `stop()` or, as a last resort, in `deinit`).
private final class Daemon: @unchecked Sendable {
    // @unchecked: `pointer` is immutable and handed only to libmicrohttpd calls that are thread-safe
    // (MHD_quiesce_daemon, MHD_stop_daemon); the mutable part sits behind `state`.
    let pointer: OpaquePointer
    private let core: ServerCore
    private let state = Mutex<(listenSocket: Int32, stopped: Bool)>((-1, false))

    init(pointer: OpaquePointer, core: ServerCore) {
        self.pointer = pointer
        self.core = core
    }

    /// Stops accepting: libmicrohttpd drops the listening socket from its polling, and shutting the socket down
    /// makes the kernel refuse new connections (instead of queueing them in the backlog).
    func quiesce() {
        state.withLock { state in
            guard !state.stopped, state.listenSocket < 0 else { return }
            let socket = MHD_quiesce_daemon(pointer)
            guard socket >= 0 else { return }
            #if canImport(Glibc)
                _ = Glibc.shutdown(socket, Int32(SHUT_RDWR))  // best effort: without it, connects queue until stop
            #else
                _ = Darwin.shutdown(socket, SHUT_RDWR)  // best effort: without it, connects queue until stop
            #endif
            state.listenSocket = socket
        }
    }

    /// MHD_stop_daemon, then stops the watchdog and closes the socket quiesce handed over. The caller has resumed
    /// every suspended connection first (`ServerCore.failSuspended`): MHD_stop_daemon aborts the process otherwise.
    func stop() {
        state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            MHD_stop_daemon(pointer)
            core.watchdog.stop()
            if state.listenSocket >= 0 {
                close(state.listenSocket)
                state.listenSocket = -1
            }
        }
    }

    deinit {
        // The server was dropped without `shutdown`: the same steps, synchronously and with a short grace.
        if !state.withLock(\.stopped) {
            core.draining.store(true, ordering: .relaxed)
            quiesce()
            let failed = core.failSuspended()
            var waited = 0
            while failed.contains(where: { !$0.state.withLock(\.finished) }) && waited < 200 {
                usleep(5_000)
                waited += 1
            }
            stop()
        }
    }
}
