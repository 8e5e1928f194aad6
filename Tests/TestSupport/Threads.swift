import Foundation

/// Runs blocking work (sockets, initdb, pg_ctl, psql) on a thread of its own, never on Swift's cooperative pool,
/// which servers' deferred tasks need and which some tests measure, and returns its result.
public func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result(catching: work)) }.start()
    }
}

/// Runs `count` blocking workers in parallel, each on its own thread, and returns their results in order.
public func onThreads<T: Sendable>(_ count: Int, _ work: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        for index in 0..<count {
            group.addTask { (index, try await onThread { try work(index) }) }
        }
        var results = [T?](repeating: nil, count: count)
        for try await (index, value) in group { results[index] = value }
        return results.compactMap { $0 }
    }
}
