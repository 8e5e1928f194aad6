import Foundation
import Logging
import Postgres
import Synchronization
import TestSupport

/// A logger for tests: quiet unless POSTGRES_TEST_LOG=debug.
let testLogger: Logger = {
    var logger = Logger(label: "postgres-tests")
    logger.logLevel = ProcessInfo.processInfo.environment["POSTGRES_TEST_LOG"] == "debug" ? .debug : .error
    return logger
}()

/// Awaits `operation`, but gives up after `seconds` (the operation keeps running detached): bounds every wait.
func within<T: Sendable>(
    _ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let once = OnceContinuation(continuation)
        Task { once.resume(with: await Result { try await operation() }) }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            once.resume(with: .failure(TestSupportError("\(what) did not finish within \(seconds) s")))
        }
    }
}

/// A continuation resumed by whichever side comes first.
final class OnceContinuation<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>
    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = Mutex(continuation) }
    func resume(with result: Result<T, any Error>) {
        continuation.withLock { stored in
            stored?.resume(with: result)
            stored = nil
        }
    }
}

extension Result where Failure == any Error {
    init(_ body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// The tests that do not restart the server share TestSupport's cluster, each in a database of its own.
enum SharedPostgres {
    /// A URL of a new, empty database.
    static func freshDatabase(applicationName: String? = nil) async throws -> String {
        var url = try await TestDatabase.make(prefix: "pgt")
        if let applicationName { url += (url.contains("?") ? "&" : "?") + "application_name=\(applicationName)" }
        return url
    }

    /// Runs SQL through psql against `url` (off the cooperative pool).
    @discardableResult
    static func psql(url: String, _ sql: String) async throws -> String {
        try await onThread { try TemporaryPostgres.psql(url: url, sql) }
    }
}

/// A private cluster for a test that stops and starts the server; destroy it in a `defer`.
func startPrivateCluster() async throws -> TemporaryPostgres {
    try await onThread { try TemporaryPostgres.start() }
}

/// Thread-safe collection for values recorded by callbacks.
final class Recorder<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
    var count: Int { values.withLock { $0.count } }
}

/// An integer shared between tasks and threads.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    var value: Int { atomic.load(ordering: .relaxed) }
    /// Adds one and returns the new value.
    @discardableResult
    func increment() -> Int { atomic.wrappingAdd(1, ordering: .relaxed).newValue }
    /// Subtracts one.
    func decrement() { atomic.wrappingSubtract(1, ordering: .relaxed) }
    /// Raises the stored value to `candidate` if that is larger.
    func raise(to candidate: Int) {
        var current = atomic.load(ordering: .relaxed)
        while candidate > current {
            let (exchanged, original) = atomic.compareExchange(
                expected: current, desired: candidate, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

/// A boolean shared between tasks.
final class Flag: Sendable {
    private let atomic: Atomic<Bool>
    init(_ value: Bool) { atomic = Atomic(value) }
    var value: Bool { atomic.load(ordering: .relaxed) }
    func set(_ value: Bool) { atomic.store(value, ordering: .relaxed) }
}
