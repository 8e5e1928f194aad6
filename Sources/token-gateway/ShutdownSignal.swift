import Codecs
import Dispatch
import Foundation
import HTTPClient
import Logging
import TokenGatewayAPI
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// Waits for SIGTERM or SIGINT. The handlers live here, not in top-level code, so they do not inherit the main actor.
enum ShutdownSignal {
    static func wait() async -> String {
        // A parent may have started us with these signals blocked (test runners do); unblock them.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        return await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let resumed = Resumed()
            for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    if resumed.claim() { continuation.resume(returning: name) }
                }
                source.resume()
                Sources.keep(source)
            }
        }
    }

    /// Resumes the continuation once, whichever signal comes first.
    final class Resumed: @unchecked Sendable {
        // Guarded by `lock`.
        private let lock = NSLock()
        private var done = false
        func claim() -> Bool {
            lock.lock()
            defer { lock.unlock() }
            if done { return false }
            done = true
            return true
        }
    }

    /// Keeps the dispatch sources alive for the life of the process.
    enum Sources {
        nonisolated(unsafe) static var all: [any DispatchSourceSignal] = []
        static let lock = NSLock()
        static func keep(_ source: any DispatchSourceSignal) {
            lock.lock()
            all.append(source)
            lock.unlock()
        }
    }
}

/// A GET of /healthz through the project's own HTTP client.
enum HealthProbe {
    static func check(url: String) async -> Bool {
        guard
            let client = try? HTTPClient(
                configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), totalTimeout: .seconds(3)),
                logger: Logger(label: "healthcheck"))
        else { return false }
        defer { client.shutdown() }
        let response = try? await client.send(HTTPClientRequest(method: "GET", url: url))
        return response?.status == 200
    }
}
