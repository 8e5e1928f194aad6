/// When one TCP connection must next make progress: a value-type state machine with no I/O.
///
/// A new connection has `header` to deliver its request line and headers. After each answer it may stay idle
/// for `idle`, counted from the answer: bytes that do not complete a request line do not restart that clock.
/// Once the next request line arrives, its headers have `header` more. While a request is being handled (body
/// upload, deferred answer, response) there is no deadline here; libmicrohttpd's own inactivity timeout covers
/// uploads and sends.
struct ConnectionDeadlines: Sendable {
    /// The durations the deadlines are made of.
    struct Timeouts: Sendable, Equatable {
        /// For the request line and headers.
        var header: Duration
        /// For a kept-alive connection between an answer and the next request line.
        var idle: Duration
    }

    enum Phase: Sendable, Equatable {
        /// Newly opened, or idle after an answer; no request line yet.
        case awaitingRequest
        /// The request line arrived; its headers have not.
        case readingHeaders
        /// Headers complete: the request is with the handler (or its body or answer is in transit).
        case handling
        /// Shut down by the server (overdue or shed); libmicrohttpd has yet to close it.
        case closing
    }

    let timeouts: Timeouts
    private(set) var phase = Phase.awaitingRequest
    /// When the connection is overdue; nil while a request is handled or once it is closing.
    private(set) var deadline: ContinuousClock.Instant?
    /// Since when the connection has waited for a request: the oldest waiting connections are shed first.
    private(set) var waitingSince: ContinuousClock.Instant
    /// Requests answered on this connection.
    private(set) var answered = 0

    init(openedAt now: ContinuousClock.Instant, timeouts: Timeouts) {
        self.timeouts = timeouts
        self.deadline = now + timeouts.header
        self.waitingSince = now
    }

    /// The request line arrived; on a kept-alive connection the header deadline starts now (on a new one it
    /// started when the connection opened).
    mutating func requestLineArrived(at now: ContinuousClock.Instant) {
        guard phase == .awaitingRequest else { return }
        phase = .readingHeaders
        if answered > 0 { deadline = now + timeouts.header }
    }

    /// The headers are complete: no deadline of ours while the request is handled.
    mutating func headersArrived() {
        guard phase == .awaitingRequest || phase == .readingHeaders else { return }
        phase = .handling
        deadline = nil
    }

    /// The answer was sent (or the request ended early): the idle clock starts.
    mutating func requestCompleted(at now: ContinuousClock.Instant) {
        guard phase != .closing else { return }
        answered += 1
        phase = .awaitingRequest
        deadline = now + timeouts.idle
        waitingSince = now
    }

    /// True when the connection has missed its deadline and is not already closing.
    func isOverdue(at now: ContinuousClock.Instant) -> Bool {
        guard let deadline else { return false }
        return now >= deadline
    }

    /// True while the connection waits for a request (new, idle, or part way through its headers): such a
    /// connection may be shed at the connection limit. One being handled or already closing may not.
    var isWaiting: Bool { phase == .awaitingRequest || phase == .readingHeaders }

    /// Marks the connection closing; false when it already was (so it is shut down once).
    mutating func close() -> Bool {
        guard phase != .closing else { return false }
        phase = .closing
        deadline = nil
        return true
    }
}

/// Which waiting connections to shed at the connection limit (no I/O).
enum ConnectionShedding {
    /// How many connections to shed when `open` are open (not counting those already closing) against `limit`:
    /// none below the limit; past it, enough to get back under it with room for `batch - 1` newcomers, so the
    /// scan for victims runs once per `batch` new connections rather than for each.
    static func count(open: Int, limit: Int, batch: Int) -> Int {
        open > limit ? open - limit + max(1, batch) - 1 : 0
    }

    /// The positions in `waitingSince` of the `count` connections that have waited longest, oldest first.
    static func oldest(_ waitingSince: [ContinuousClock.Instant], count: Int) -> [Int] {
        guard count > 0 else { return [] }
        return Array(waitingSince.indices.sorted { waitingSince[$0] < waitingSince[$1] }.prefix(count))
    }
}
