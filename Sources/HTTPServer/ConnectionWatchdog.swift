import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One open TCP connection as the watchdog sees it; libmicrohttpd's per-socket context points at it.
final class WatchedConnection: Sendable {
    /// The connection's socket. libmicrohttpd owns it: the watchdog only ever shuts it down, never closes it.
    let socket: Int32
    /// Written by the worker thread that owns the connection (one request step at a time) and read by the
    /// watchdog thread; hence a lock, uncontended but for the watchdog's sweeps.
    let deadlines: Mutex<ConnectionDeadlines>
    /// The last answer sent, for the next identical one (`ServerCore.send`); destroyed when the connection closes.
    let lastResponse = Mutex<ReusableResponse?>(nil)

    init(socket: Int32, deadlines: ConnectionDeadlines) {
        self.socket = socket
        self.deadlines = Mutex(deadlines)
    }
}

/// The open connections of one server: cuts those past their deadline (`ConnectionDeadlines`) from a thread of
/// its own, and at the connection limit sheds the ones that have waited longest for a request, so that a new
/// client is always let in.
///
/// libmicrohttpd restarts its inactivity timer on every byte and refuses new connections at its limit; both are
/// what slow and silent clients exploit. This fills the gap with `shutdown(2)`: libmicrohttpd's epoll loop then
/// sees the hang-up, reads end of stream and closes the connection its normal way.
///
/// Why a shut-down socket can never be a recycled descriptor: libmicrohttpd 0.9.75 closes a connection's socket
/// only after calling the `MHD_CONNECTION_NOTIFY_CLOSED` notification for it (`MHD_cleanup_connections` in
/// daemon.c, also on `MHD_stop_daemon`; and on the error path of `new_connection_process_`, right after
/// STARTED). That notification (`closed(_:)`) takes the registry lock to remove the connection, and every
/// `shutdown` here happens under the same lock on a connection still registered. So while we may shut a socket
/// down, libmicrohttpd has not closed it, and its number cannot belong to anything else.
final class ConnectionWatchdog: Sendable {
    private struct Registry {
        var open: [ObjectIdentifier: WatchedConnection] = [:]
        /// Open connections already shut down, waiting for libmicrohttpd's close notification.
        var closing = 0
        /// Most connections kept open (`HTTPServerConfiguration.maxConnections`, or fewer to fit the
        /// process's open-file limit).
        var limit: Int
        var cutSinceReport = 0
        var shedSinceReport = 0
        var refusedSinceReport = 0
        var lastReport = ContinuousClock.now
    }

    let timeouts: ConnectionDeadlines.Timeouts
    private let logger: Logger
    private let registry: Mutex<Registry>
    private let running = Atomic<Bool>(false)
    /// How often the thread looks for connections past their deadline.
    static let tick = Duration.milliseconds(100)

    init(timeouts: ConnectionDeadlines.Timeouts, limit: Int, logger: Logger) {
        self.timeouts = timeouts
        self.logger = logger
        self.registry = Mutex(Registry(limit: max(1, limit)))
    }

    /// Connections open now, including those shut down and not yet closed.
    var openCount: Int { registry.withLock { $0.open.count } }

    /// Sets the number of connections kept open (before `start`).
    func setLimit(_ limit: Int) {
        registry.withLock { $0.limit = max(1, limit) }
    }

    // MARK: - libmicrohttpd's notifications (on its worker threads)

    /// A connection opened. Past the limit, the connections that have waited longest for a request are shut
    /// down (in a batch, so the scan runs once per many new connections); the newcomer itself only when every
    /// other connection is busy with a request.
    func opened(socket: Int32) -> WatchedConnection {
        let connection = WatchedConnection(
            socket: socket, deadlines: ConnectionDeadlines(openedAt: .now, timeouts: timeouts))
        registry.withLock { registry in
            registry.open[ObjectIdentifier(connection)] = connection
            let live = registry.open.count - registry.closing
            let wanted = ConnectionShedding.count(open: live, limit: registry.limit, batch: registry.limit / 64)
            guard wanted > 0 else { return }
            var candidates: [WatchedConnection] = []
            var waitingSince: [ContinuousClock.Instant] = []
            for other in registry.open.values where other !== connection {
                other.deadlines.withLock { deadlines in
                    guard deadlines.isWaiting else { return }
                    candidates.append(other)
                    waitingSince.append(deadlines.waitingSince)
                }
            }
            var shed = 0
            for index in ConnectionShedding.oldest(waitingSince, count: wanted)
            where shut(candidates[index], if: \.isWaiting, in: &registry) {
                shed += 1
            }
            registry.shedSinceReport += shed
            if shed < live - registry.limit && shut(connection, if: { _ in true }, in: &registry) {
                registry.refusedSinceReport += 1
            }
        }
        return connection
    }

    /// libmicrohttpd is about to close the connection's socket.
    func closed(_ connection: WatchedConnection) {
        registry.withLock { registry in
            guard registry.open.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
            if connection.deadlines.withLock({ $0.phase == .closing }) { registry.closing -= 1 }
        }
    }

    // MARK: - The watchdog thread

    /// Shuts down every connection past its deadline.
    func sweep(at now: ContinuousClock.Instant) {
        registry.withLock { registry in
            for connection in Array(registry.open.values)
            where shut(connection, if: { $0.isOverdue(at: now) }, in: &registry) {
                registry.cutSinceReport += 1
            }
        }
    }

    /// Starts the thread that sweeps every `tick`; it ends within a tick of `stop()`.
    func start() throws {
        running.store(true, ordering: .releasing)
        // Unmanaged: the thread holds the watchdog until its loop ends, then releases it.
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { context in
                // Unmanaged: balances the passRetained in start().
                guard let context else { return nil }
                Unmanaged<ConnectionWatchdog>.fromOpaque(context).takeRetainedValue().run()
                return nil
            }, context)
        guard created == 0 else {
            running.store(false, ordering: .releasing)
            Unmanaged<ConnectionWatchdog>.fromOpaque(context).release()
            throw HTTPServerError("start", "cannot start the connection watchdog thread (error \(created))")
        }
        pthread_detach(thread)
    }

    /// Asks the thread to end. Connections still open are libmicrohttpd's to close (`MHD_stop_daemon`).
    func stop() {
        running.store(false, ordering: .releasing)
    }

    private func run() {
        let microseconds = UInt32(Self.tick / .microseconds(1))
        while running.load(ordering: .acquiring) {
            usleep(microseconds)
            let now = ContinuousClock.now
            sweep(at: now)
            report(at: now)
        }
    }

    /// One log line at most every 10 s about connections the server closed, so an attack cannot flood the log.
    private func report(at now: ContinuousClock.Instant) {
        let counts: (cut: Int, shed: Int, refused: Int, open: Int)? = registry.withLock { registry in
            guard now - registry.lastReport >= .seconds(10),
                registry.cutSinceReport + registry.shedSinceReport + registry.refusedSinceReport > 0
            else { return nil }
            defer {
                registry.lastReport = now
                registry.cutSinceReport = 0
                registry.shedSinceReport = 0
                registry.refusedSinceReport = 0
            }
            return (registry.cutSinceReport, registry.shedSinceReport, registry.refusedSinceReport, registry.open.count)
        }
        guard let counts else { return }
        logger.notice(
            "closed slow or idle connections",
            metadata: [
                "past_deadline": "\(counts.cut)", "shed_at_limit": "\(counts.shed)",
                "refused_at_limit": "\(counts.refused)", "open": "\(counts.open)",
            ])
    }

    /// Marks `connection` closing and shuts its socket down, if `condition` holds (checked under the
    /// connection's lock, so a request step cannot slip in between). The caller holds the registry lock, which is
    /// what keeps the socket from being closed meanwhile (see the type's comment).
    private func shut(
        _ connection: WatchedConnection, if condition: (ConnectionDeadlines) -> Bool, in registry: inout Registry
    ) -> Bool {
        let closing = connection.deadlines.withLock { deadlines in condition(deadlines) && deadlines.close() }
        guard closing else { return false }
        registry.closing += 1
        #if canImport(Glibc)
            _ = Glibc.shutdown(connection.socket, Int32(SHUT_RDWR))  // fails only for a socket already dead
        #else
            _ = Darwin.shutdown(connection.socket, SHUT_RDWR)  // fails only for a socket already dead
        #endif
        return true
    }
}
