import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import HTTPClient

// Shared by the HTTP client suites.

let testLogger = Logger(label: "http-client-tests")

/// Runs `body` with a fresh server and client; shuts the client down and stops the server afterwards.
func withClientAndServer<T>(
    _ configuration: HTTPClientConfiguration = HTTPClientConfiguration(),
    _ body: (HTTPClient, TestHTTPServer) async throws -> T
) async throws -> T {
    let server = try TestHTTPServer()
    defer { server.stop() }
    let client = try HTTPClient(configuration: configuration, logger: testLogger)
    defer { client.shutdown() }
    return try await body(client, server)
}

/// The error `operation` throws (nil if it succeeds) and how long it took.
func failure(_ operation: () async throws -> HTTPClientResponse) async -> (error: (any Error)?, seconds: Double) {
    let start = ContinuousClock.now
    var caught: (any Error)?
    do { _ = try await operation() } catch { caught = error }
    return (caught, seconds(since: start))
}

func timing(_ label: String, _ value: Double) {
    print("[timing] \(label): \(String(format: "%.1f", value * 1000)) ms")
}

/// Decodes an application/x-www-form-urlencoded body the way a server would ('+' is a space).
func formDecode(_ body: String) -> [(String, String)] {
    body.split(separator: "&", omittingEmptySubsequences: false).map { pair in
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        func decode(_ text: Substring) -> String {
            String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "<undecodable>"
        }
        return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
    }
}
