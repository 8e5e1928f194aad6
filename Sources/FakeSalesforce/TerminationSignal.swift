import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Waiting for SIGTERM or SIGINT, for the `fake-salesforce` command (kept out of `main.swift`, where a Dispatch
/// handler would inherit `@MainActor` and trap when called on a Dispatch thread).
public enum TerminationSignal {
    /// Suspends until the process receives SIGTERM or SIGINT; returns the signal number.
    public static func wait() async -> Int32 {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "fake-salesforce.signals")
        let sources = [SIGTERM, SIGINT].map { DispatchSource.makeSignalSource(signal: $0, queue: queue) }
        let received: Int32 = await withCheckedContinuation { continuation in
            let once = Once()
            for source in sources {
                let number = Int32(source.handle)
                source.setEventHandler {
                    if once.claim() { continuation.resume(returning: number) }
                }
                source.resume()
            }
        }
        for source in sources { source.cancel() }
        return received
    }
}

/// True for the first caller of `claim()` only.
private final class Once: Sendable {
    private let fired = Atomic<Bool>(false)

    func claim() -> Bool {
        fired.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}
