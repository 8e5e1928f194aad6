import Synchronization

/// One checked-out connection. Its queries run on the connection's own thread, never on Swift's cooperative pool.
///
/// Statements sent to one connection run one after another, in the order they were issued.
public final class PostgresConnection: Sendable {
    let worker: ConnectionWorker
    /// Mirrors whether the last statement left a transaction open, so returning the connection to the pool only
    /// hops to the worker thread when a rollback is needed.
    private let transactionOpen = Atomic<Bool>(false)

    init(settings: ConnectionSettings, number: Int) {
        worker = ConnectionWorker(settings: settings, name: "postgres-\(number)")
    }

    deinit {
        worker.stop()
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...; cast in SQL, e.g. `$2::int`) via `PQexecParams`.
    /// A nil parameter is SQL NULL.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) async throws -> PostgresResult {
        try await onWorker { try $0.query(sql, parameters) }
    }

    /// Runs a script of one or more statements without parameters via `PQexec` (e.g. a migration).
    public func execute(_ sql: String) async throws {
        try await onWorker { try $0.execute(sql) }
    }

    /// Starts a transaction block.
    func begin() async throws {
        try await onWorker { try $0.execute("BEGIN") }
    }

    /// Commits; throws (after rolling back) if an earlier statement had aborted the transaction.
    func commit() async throws {
        try await onWorker { try $0.commit() }
    }

    /// Rolls back the open transaction, or drops the connection if that fails.
    func rollback() async {
        do {
            try await onWorker { $0.prepareForReuse() }
        } catch {
            // Only `.closed` can get here: the worker is gone and with it the connection and its transaction.
        }
    }

    /// Rolls back whatever a borrower left open; a no-op (no thread hop) when nothing is open.
    func prepareForReuse() async {
        guard transactionOpen.load(ordering: .relaxed) else { return }
        await rollback()
    }

    /// Runs `body` with BEGIN / COMMIT around it, ROLLBACK when it throws.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await begin()
        let value: T
        do {
            value = try await body(self)
        } catch {
            await rollback()
            throw error
        }
        try await commit()
        return value
    }

    private func onWorker<T: Sendable>(_ body: @escaping @Sendable (LibPQConnection) throws -> T) async throws -> T {
        try await worker.run { connection in
            defer { self.transactionOpen.store(connection.inTransaction, ordering: .relaxed) }
            return try body(connection)
        }
    }
}
