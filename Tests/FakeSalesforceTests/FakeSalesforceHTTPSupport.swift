import Foundation
import Logging
import TestSupport
import Testing

@testable import FakeSalesforce

#if canImport(Glibc)
    import Glibc
#endif

/// Starts a fake on 127.0.0.1:0, runs `body`, and always shuts the fake down.
func withFake<T>(_ body: (FakeSalesforce) async throws -> T) async throws -> T {
    let fake = try FakeSalesforce.start(logger: Logger(label: "fake-salesforce-test"))
    do {
        let result = try await body(fake)
        await fake.shutdown()
        return result
    } catch {
        await fake.shutdown()
        throw error
    }
}

/// The worker thread count a default `HTTPServerConfiguration` uses (one per core).
enum HTTPServerConfigurationDefaults {
    static var threads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}
