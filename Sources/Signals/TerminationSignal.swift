import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The signal that asked the process to stop.
public struct TerminationSignal: Sendable, Equatable, CustomStringConvertible {
    /// The signal number, `SIGTERM` or `SIGINT`.
    public let number: Int32

    /// `"SIGTERM"` or `"SIGINT"`.
    public var description: String { number == SIGINT ? "SIGINT" : "SIGTERM" }

    /// Suspends until the process receives SIGTERM or SIGINT, and returns which came first.
    ///
    /// Both executables call this from their command, not from top-level code: a Dispatch handler written in
    /// `main.swift` would inherit `@MainActor` and trap when called on a Dispatch thread. The signals' default
    /// action is turned off for good, so a second signal during shutdown does not kill the process.
    public static func wait() async -> TerminationSignal {
        // A parent may have started us with these signals blocked (test runners do); unblock them.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "signals.termination")
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
        return TerminationSignal(number: received)
    }
}

/// True for the first caller of `claim()` only.
private final class Once: Sendable {
    private let fired = Atomic<Bool>(false)

    func claim() -> Bool {
        fired.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}
