import Logging
import Synchronization

/// A bounded pool of PostgreSQL connections, each with its own thread.
///
/// Connections open lazily (up to `poolSize`) and reconnect by themselves: after the server went away, the first
/// statement on a connection notices the closed socket before sending anything, reconnects once and runs; while
/// the server is down it fails fast with `.unavailable` (connect_timeout bounds the attempt). A statement whose
/// connection breaks after it was sent is never retried, since it may have run.
public final class PostgresPool: Sendable {
    /// The configuration the pool was created with.
    public let configuration: PostgresConfiguration
    private let settings: ConnectionSettings
    private let logger: Logger
    private let state: Mutex<PoolStateMachine<PostgresConnection, Waiter>>
    private let nextID = Atomic<Int>(0)

    /// A caller waiting for a connection, with the task that fails it after `acquireTimeoutSeconds`.
    struct Waiter: Sendable {
        let continuation: CheckedContinuation<PostgresConnection, any Error>
        let timeout: Task<Void, Never>
    }

    /// Creates a pool; no connection opens until the first statement.
    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.settings = ConnectionSettings(
            url: configuration.url, connectTimeoutSeconds: configuration.connectTimeoutSeconds, logger: logger)
        self.state = Mutex(PoolStateMachine(capacity: configuration.poolSize))
    }

    /// Connections currently checked out (for a metric).
    public var inUse: Int { state.withLock { $0.inUse } }

    /// Checks out a connection for `body` and returns it afterwards; an open transaction left behind is rolled back.
    public func withConnection<T: Sendable>(
        isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await acquire()
        let value: T
        do {
            value = try await body(connection)
        } catch {
            await release(connection)
            throw error
        }
        await release(connection)
        return value
    }

    /// Runs `body` inside BEGIN / COMMIT on one connection; ROLLBACK when it throws. Statements are never retried
    /// inside the transaction: a connection lost midway fails the call with `.unavailable`.
    public func transaction<T: Sendable>(
        isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { connection in try await connection.transaction(body) }
    }

    /// Runs one statement on a connection of the pool.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) async throws -> PostgresResult {
        try await withConnection { connection in try await connection.query(sql, parameters) }
    }

    /// Closes idle connections (and the others when they come back); later calls fail with `.closed`.
    public func close() async {
        let (idle, waiters) = state.withLock { $0.close() }
        for waiter in waiters {
            waiter.timeout.cancel()
            waiter.continuation.resume(throwing: PostgresError.closed("pool"))
        }
        for connection in idle { await connection.worker.shutdown() }
        logger.debug("postgres pool closed", metadata: ["closed_idle": "\(idle.count)"])
    }

    // MARK: Checkout

    private enum AcquireStep {
        case resume(PostgresConnection)
        case open
        case fail(any Error)
        case waiting
    }

    private func acquire() async throws -> PostgresConnection {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let step = state.withLock { state -> AcquireStep in
                    switch state.acquire() {
                    case .use(let connection): return .resume(connection)
                    case .open: return .open
                    case .closed: return .fail(PostgresError.closed("pool"))
                    case .wait:
                        // Checked under the lock: a cancellation after this point finds the waiter queued.
                        if Task.isCancelled { return .fail(CancellationError()) }
                        let seconds = configuration.acquireTimeoutSeconds
                        let capacity = state.capacity
                        let timeout = Task { [weak self] in
                            do { try await Task.sleep(for: .seconds(seconds)) } catch { return }
                            self?.giveUp(
                                id: id,
                                with: PostgresError(
                                    kind: .poolExhausted,
                                    message: "no free connection within \(seconds) s (pool size \(capacity))"))
                        }
                        state.enqueue(id: id, waiter: Waiter(continuation: continuation, timeout: timeout))
                        return .waiting
                    }
                }
                switch step {
                case .resume(let connection): continuation.resume(returning: connection)
                case .open:
                    logger.debug("opening postgres connection", metadata: ["connection": "\(id)"])
                    continuation.resume(returning: PostgresConnection(settings: settings, number: id))
                case .fail(let error): continuation.resume(throwing: error)
                case .waiting: break
                }
            }
        } onCancel: {
            giveUp(id: id, with: CancellationError())
        }
    }

    private func giveUp(id: Int, with error: any Error) {
        guard let waiter = state.withLock({ $0.removeWaiter(id: id) }) else { return }
        waiter.timeout.cancel()
        waiter.continuation.resume(throwing: error)
    }

    private func release(_ connection: PostgresConnection) async {
        await connection.prepareForReuse()
        switch state.withLock({ $0.release(connection) }) {
        case .handOver(let connection, let waiter):
            waiter.timeout.cancel()
            waiter.continuation.resume(returning: connection)
        case .stored:
            break
        case .close(let connection):
            await connection.worker.shutdown()
        }
    }
}
