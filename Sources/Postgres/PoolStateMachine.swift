/// The bookkeeping of a bounded pool, as a value type that returns what the caller must do.
///
/// Generic over the connection and waiter types so it can be tested without threads or a server.
struct PoolStateMachine<Connection, Waiter> {
    /// The most connections that may exist at once.
    let capacity: Int
    /// Connections created and not yet closed (idle + checked out).
    private(set) var opened = 0
    private var idle: [Connection] = []
    private var waiters: [(id: Int, waiter: Waiter)] = []
    private(set) var isClosed = false

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Connections currently checked out.
    var inUse: Int { opened - idle.count }
    /// Callers waiting for a connection.
    var waiting: Int { waiters.count }

    enum AcquireAction {
        /// Use this idle connection.
        case use(Connection)
        /// Create a new connection (already counted in `opened`) and use it.
        case open
        /// Nothing free: call `enqueue` and wait.
        case wait
        /// The pool is closed.
        case closed
    }

    mutating func acquire() -> AcquireAction {
        if isClosed { return .closed }
        if let connection = idle.popLast() { return .use(connection) }
        if opened < capacity {
            opened += 1
            return .open
        }
        return .wait
    }

    /// Queues a waiter after `acquire()` answered `.wait` (under the same lock).
    mutating func enqueue(id: Int, waiter: Waiter) {
        waiters.append((id, waiter))
    }

    /// Removes a waiter that gave up (timeout, cancellation); nil if it was already served.
    mutating func removeWaiter(id: Int) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).waiter
    }

    enum ReleaseAction {
        /// Hand the connection straight to this waiter (it stays checked out).
        case handOver(Connection, to: Waiter)
        /// The connection went back to the idle list.
        case stored
        /// The pool is closed: close this connection.
        case close(Connection)
    }

    mutating func release(_ connection: Connection) -> ReleaseAction {
        if isClosed {
            opened -= 1
            return .close(connection)
        }
        if !waiters.isEmpty {
            let first = waiters.removeFirst()
            return .handOver(connection, to: first.waiter)
        }
        idle.append(connection)
        return .stored
    }

    /// Closes the pool: returns the idle connections to close and the waiters to fail.
    mutating func close() -> (idle: [Connection], waiters: [Waiter]) {
        isClosed = true
        let closing = idle
        idle = []
        opened -= closing.count
        let failing = waiters.map(\.waiter)
        waiters = []
        return (closing, failing)
    }
}
