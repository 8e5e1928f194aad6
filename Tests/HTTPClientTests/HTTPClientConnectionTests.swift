import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import HTTPClient

/// Connection reuse, concurrency, limits, validation and shutdown.
@Suite struct HTTPClientConnectionTests {
    // MARK: Connection reuse and concurrency

    @Test func sequentialRequestsReuseOneKeepAliveConnection() async throws {
        try await withClientAndServer { client, server in
            let start = ContinuousClock.now
            for index in 0..<10 {
                let request: HTTPClientRequest =
                    index.isMultiple(of: 2)
                    ? HTTPClientRequest(method: "GET", url: server.url + "/")
                    : .form(url: server.url + "/echo", fields: [("n", "\(index)")])
                let response = try await client.send(request)
                #expect(response.status == 200)
            }
            timing("10 sequential requests on one connection", seconds(since: start))
            #expect(server.requests.count == 10)
            #expect(server.acceptedConnections == 1)
            #expect(client.connectionsOpened == 1)
        }
    }

    @Test func twentyConcurrentDelayedRequestsRunInParallelOnOnePoller() async throws {
        try await withClientAndServer { client, server in
            let start = ContinuousClock.now
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/delay/200")).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let elapsed = seconds(since: start)
            timing("20 concurrent requests delayed 200 ms each", elapsed)
            #expect(statuses == Array(repeating: 200, count: 20))
            #expect(elapsed < 1.5, "20 x 200 ms sequentially would take 4 s")
            #expect(server.acceptedConnections == 20)
        }
    }

    // MARK: Limits, validation, lifecycle

    @Test func responsesLargerThanTheLimitFail() async throws {
        let configuration = HTTPClientConfiguration(maxResponseBytes: 1000)
        try await withClientAndServer(configuration) { client, server in
            let exact = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/bytes/1000"))
            #expect(exact.body.count == 1000)
            let streamedExact = try await client.send(
                HTTPClientRequest(method: "GET", url: server.url + "/stream/1000"))
            #expect(streamedExact.body.count == 1000)

            let (announced, _) = await failure {
                try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/bytes/1001"))
            }
            let announcedError = try #require(announced as? HTTPClientError)
            #expect(announcedError.kind == .responseTooLarge)
            #expect(announcedError.code == 63)

            let (streamed, _) = await failure {
                try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/stream/200000"))
            }
            let streamedError = try #require(streamed as? HTTPClientError)
            #expect(streamedError.kind == .responseTooLarge)
            #expect(streamedError.code == 23)
            #expect(streamedError.mayHaveReachedServer)
        }
    }

    @Test func responseHeadersCountAgainstTheLimit() async throws {
        try await withClientAndServer(HTTPClientConfiguration(maxResponseBytes: 60)) { client, server in
            let (error, _) = await failure {
                try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/headers"))
            }
            let clientError = try #require(error as? HTTPClientError)
            #expect(clientError.kind == .responseTooLarge)
            let small = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/bytes/10"))
            #expect(small.body.count == 10)
        }
    }

    @Test func invalidRequestsAreRefusedBeforeSending() async throws {
        try await withClientAndServer { client, server in
            let port = server.port
            let invalidURLs = [
                "127.0.0.1:\(port)/", "ftp://127.0.0.1:\(port)/", "http://127.0.0.1:\(port)/a b", "file:///etc/passwd",
                "http://[::1:\(port)/",
            ]
            for url in invalidURLs {
                let (error, _) = await failure { try await client.send(HTTPClientRequest(method: "GET", url: url)) }
                let clientError = try #require(error as? HTTPClientError, "\(url)")
                #expect(clientError.kind == .invalidURL, "\(url): \(clientError)")
                #expect(!clientError.mayHaveReachedServer)
            }
            let injections = [
                HTTPClientRequest(method: "GET", url: server.url + "/", headers: [("X-Test", "a\r\nX-Evil: 1")]),
                HTTPClientRequest(method: "GET", url: server.url + "/", headers: [("X Bad", "1")]),
                HTTPClientRequest(method: "GET /x HTTP/1.1\r\n", url: server.url + "/"),
            ]
            for request in injections {
                let (error, _) = await failure { try await client.send(request) }
                let clientError = try #require(error as? HTTPClientError)
                #expect(clientError.kind == .other)
                #expect(!clientError.mayHaveReachedServer)
            }
            #expect(server.requests.isEmpty)
            #expect(server.acceptedConnections == 0)
        }
    }

    @Test func shutdownFailsPendingRequestsAndReturns() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = try HTTPClient(configuration: HTTPClientConfiguration(), logger: testLogger)
        let calls = (0..<3).map { _ in
            Task { try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/delay/5000")) }
        }
        let arrived = await eventually(within: 5) { server.requests.count == 3 }
        try #require(arrived)

        let start = ContinuousClock.now
        client.shutdown()
        let shutdownSeconds = seconds(since: start)
        timing("shutdown with 3 requests in flight", shutdownSeconds)
        #expect(shutdownSeconds < 1.0)
        for call in calls {
            let (error, elapsed) = await failure { try await call.value }
            let clientError = try #require(error as? HTTPClientError)
            #expect(clientError.kind == .shutDown)
            #expect(clientError.mayHaveReachedServer)
            #expect(elapsed < 1.0)
        }

        client.shutdown()  // idempotent
        let (late, _) = await failure { try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/")) }
        let lateError = try #require(late as? HTTPClientError)
        #expect(lateError.kind == .shutDown)
        #expect(!lateError.mayHaveReachedServer)
    }

    @Test func cancellingTheTaskFailsTheCallPromptly() async throws {
        try await withClientAndServer { client, server in
            let call = Task { try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/delay/5000")) }
            let arrived = await eventually(within: 5) { server.requests.count == 1 }
            try #require(arrived)
            let start = ContinuousClock.now
            call.cancel()
            let (error, _) = await failure { try await call.value }
            timing("cancellation of an in-flight call", seconds(since: start))
            #expect(error is CancellationError)
            #expect(seconds(since: start) < 1.0)

            // Cancelled before it starts: fails without reaching the server.
            let early = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/"))
            }
            let (earlyError, _) = await failure { try await early.value }
            #expect(earlyError is CancellationError)
            #expect(server.requests.count == 1)

            // The client keeps working afterwards.
            let response = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/"))
            #expect(response.status == 200)
        }
    }

    @Test func droppingTheClientStopsItsPoller() async throws {
        try await withClientAndServer { _, server in
            var client: HTTPClient? = try HTTPClient(configuration: HTTPClientConfiguration(), logger: testLogger)
            let response = try await client?.send(HTTPClientRequest(method: "GET", url: server.url + "/"))
            #expect(response?.status == 200)
            weak let weakClient = client
            client = nil  // deinit shuts the poller down and joins it
            #expect(weakClient == nil)
        }
    }
}
