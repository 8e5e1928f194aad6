internal import CLibPQ
internal import Foundation
import Logging
import Synchronization

/// LISTEN on channels over a dedicated connection; reconnects by itself (backoff, bounded) after the server goes away.
///
/// Callbacks run on the listener's own thread, one at a time; keep them short (hand work to a task or a queue).
/// Channel names must match `[a-z0-9_]{1,63}`; other names are rejected (logged and not listened to).
public final class PostgresListener: Sendable {
    private let loop: ListenerLoop

    /// Creates a stopped listener. `onReconnect` is called after every successful (re)connect + LISTEN except the
    /// first, so callers can resync state whose notifications they may have missed.
    public init(
        url: String, channels: [String], logger: Logger,
        onNotification: @escaping @Sendable (_ channel: String, _ payload: String) -> Void,
        onReconnect: @escaping @Sendable () -> Void
    ) {
        let accepted = channels.filter(Self.isValidChannelName)
        for rejected in channels where !Self.isValidChannelName(rejected) {
            logger.error(
                "rejected LISTEN channel name (allowed: [a-z0-9_], 1-63 characters)",
                metadata: [
                    "channel": .string(String(rejected.prefix(80)))
                ])
        }
        loop = ListenerLoop(
            settings: ConnectionSettings(url: url, connectTimeoutSeconds: 3, logger: logger),
            channels: accepted, onNotification: onNotification, onReconnect: onReconnect)
    }

    deinit {
        loop.stop()
    }

    /// True for names this listener accepts: 1 to 63 characters of `a-z`, `0-9` and `_`, so they can be quoted
    /// into `LISTEN "name"` without any escaping question.
    public static func isValidChannelName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 63
            && name.utf8.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_")
            }
    }

    /// The channels actually listened to (the valid ones of those given).
    public var channels: [String] { loop.channels }

    /// Starts the listener thread; a second call does nothing.
    public func start() { loop.start() }

    /// Stops listening and joins the thread (prompt: the thread wakes at least every 100 ms). Idempotent.
    public func stop() { loop.stop() }

    /// True while connected with every LISTEN in place.
    public var isConnected: Bool { loop.connected.load(ordering: .acquiring) }
}

/// The thread and its state, separate from `PostgresListener` so that dropping the listener stops the thread.
final class ListenerLoop: @unchecked Sendable {
    // @unchecked: `started`, `stopping`, `finished` and `thread` are only touched with `condition` locked; the PGconn
    // lives in local variables of the listener thread only.
    let channels: [String]
    let connected = Atomic<Bool>(false)
    private let settings: ConnectionSettings
    private let onNotification: @Sendable (String, String) -> Void
    private let onReconnect: @Sendable () -> Void
    private let condition = NSCondition()
    private var started = false
    private var stopping = false
    private var finished = false
    private var thread: Thread?

    static let firstBackoff: Duration = .milliseconds(100)
    static let maxBackoff: Duration = .seconds(2)
    static let pollMilliseconds: Int32 = 100

    init(
        settings: ConnectionSettings, channels: [String],
        onNotification: @escaping @Sendable (String, String) -> Void, onReconnect: @escaping @Sendable () -> Void
    ) {
        self.settings = settings
        self.channels = channels
        self.onNotification = onNotification
        self.onReconnect = onReconnect
    }

    private var logger: Logger { settings.logger }

    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started, !stopping else { return }
        started = true
        let thread = Thread { [self] in
            self.run()
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "postgres-listener"
        self.thread = thread
        thread.start()
    }

    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        // Called from a callback on the listener thread itself: the loop ends after it returns; do not wait.
        guard started, thread != Thread.current else { return }
        while !finished { condition.wait() }
    }

    private var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    /// Sleeps for `duration` unless `stop()` comes first; returns true when stopping.
    private func pause(_ duration: Duration) -> Bool {
        let deadline = Date().addingTimeInterval(
            Double(duration.components.seconds)
                + Double(duration.components.attoseconds) / 1e18)
        condition.lock()
        defer { condition.unlock() }
        while !stopping && condition.wait(until: deadline) {}
        return stopping
    }

    private func run() {
        let notices = NoticeSink(logger: logger)
        var backoff = Self.firstBackoff
        var hadConnection = false
        while !isStopping {
            if let handle = connect() {
                notices.install(on: handle)
                if listenAll(handle) {
                    connected.store(true, ordering: .releasing)
                    backoff = Self.firstBackoff
                    logger.debug("postgres listener connected", metadata: ["channels": "\(channels)"])
                    if hadConnection { onReconnect() }
                    hadConnection = true
                    pump(handle)
                    connected.store(false, ordering: .releasing)
                }
                PQfinish(handle)
                if isStopping { break }
                logger.warning("postgres listener lost its connection; reconnecting")
            }
            if pause(backoff) { break }
            backoff = min(backoff * 2, Self.maxBackoff)
        }
    }

    /// Connects without blocking for longer than one poll slice at a time, so `stop()` stays prompt.
    private func connect() -> OpaquePointer? {
        let started = settings.withConnectionParameters { keywords, values in
            PQconnectStartParams(keywords, values, 1)
        }
        guard let handle = started else { return nil }
        let deadline = ContinuousClock.now + .seconds(max(2, settings.connectTimeoutSeconds))
        var status = PGRES_POLLING_WRITING
        if PQstatus(handle) == CONNECTION_BAD { status = PGRES_POLLING_FAILED }
        while true {
            if status == PGRES_POLLING_OK { return handle }
            if status == PGRES_POLLING_FAILED {
                logger.debug(
                    "postgres listener could not connect",
                    metadata: ["error": .string(settings.redactor.clean(errorMessage(of: handle)))])
                PQfinish(handle)
                return nil
            }
            if isStopping || ContinuousClock.now >= deadline {
                PQfinish(handle)
                return nil
            }
            let events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(events), revents: 0)
            if poll(&descriptor, 1, Self.pollMilliseconds) == 0 { continue }
            status = PQconnectPoll(handle)
        }
    }

    private func listenAll(_ handle: OpaquePointer) -> Bool {
        for channel in channels {
            // Safe to quote: names were checked against [a-z0-9_].
            let result = PQexec(handle, "LISTEN \"\(channel)\"")
            let failure = resultError(result, connection: handle, redactor: settings.redactor, parameters: [])
            if let result { PQclear(result) }
            if let failure {
                logger.warning("postgres LISTEN failed: \(failure)", metadata: ["channel": .string(channel)])
                return false
            }
        }
        deliver(handle)
        return true
    }

    /// Waits for input in slices of 100 ms, consuming it and delivering notifications, until the connection breaks
    /// or `stop()` is called.
    private func pump(_ handle: OpaquePointer) {
        while !isStopping {
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Self.pollMilliseconds)
            if ready < 0 && errno != EINTR { return }
            if ready > 0 && PQconsumeInput(handle) == 0 { return }
            deliver(handle)
            if PQstatus(handle) != CONNECTION_OK { return }
        }
    }

    private func deliver(_ handle: OpaquePointer) {
        while let notification = PQnotifies(handle) {
            let channel = String(cString: notification.pointee.relname)
            let payload = notification.pointee.extra.map { String(cString: $0) } ?? ""
            PQfreemem(notification)
            onNotification(channel, payload)
        }
    }
}
