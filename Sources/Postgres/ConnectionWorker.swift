internal import Foundation

/// A dedicated thread that owns one `LibPQConnection` and runs jobs against it one at a time, so blocking libpq
/// calls never occupy Swift's cooperative pool. Callers bridge in with `run(_:)`, which suspends on a continuation.
final class ConnectionWorker: @unchecked Sendable {
    // @unchecked: `jobs` and `stopping` are only touched with `condition` locked; the LibPQConnection
    // itself never leaves the worker thread (it is created there and handed to each job as an argument).
    typealias Job = @Sendable (LibPQConnection) -> Void

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var stopping = false

    init(settings: ConnectionSettings, name: String) {
        let thread = Thread { [self] in self.loop(settings: settings) }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the worker thread and returns its result; fails with `.closed` after `stop()`.
    func run<T: Sendable>(_ body: @escaping @Sendable (LibPQConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = enqueue { connection in
                continuation.resume(with: Result(catching: { try body(connection) }))
            }
            if !accepted { continuation.resume(throwing: PostgresError.closed("connection")) }
        }
    }

    /// Closes the libpq connection on the worker thread, waits for that, then lets the thread end.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let accepted = enqueue { connection in
                connection.disconnect()
                continuation.resume()
            }
            if !accepted { continuation.resume() }
        }
        stop()
    }

    /// Lets the thread end once the queued jobs ran; later `run` calls fail with `.closed`. Does not wait.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func enqueue(_ job: @escaping Job) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    private func loop(settings: ConnectionSettings) {
        let connection = LibPQConnection(settings: settings)
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                break
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job(connection)
        }
        connection.disconnect()
    }
}
