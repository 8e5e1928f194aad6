import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import HTTPClient

// MARK: Helpers

private let testLogger = Logger(label: "http-client-tests")

/// Runs `body` with a fresh server and client; shuts the client down and stops the server afterwards.
private func withClientAndServer<T>(
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
private func failure(_ operation: () async throws -> HTTPClientResponse) async -> (error: (any Error)?, seconds: Double)
{
    let start = ContinuousClock.now
    var caught: (any Error)?
    do { _ = try await operation() } catch { caught = error }
    return (caught, seconds(since: start))
}

private func timing(_ label: String, _ value: Double) {
    print("[timing] \(label): \(String(format: "%.1f", value * 1000)) ms")
}

/// Decodes an application/x-www-form-urlencoded body the way a server would ('+' is a space).
private func formDecode(_ body: String) -> [(String, String)] {
    body.split(separator: "&", omittingEmptySubsequences: false).map { pair in
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        func decode(_ text: Substring) -> String {
            String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "<undecodable>"
        }
        return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
    }
}

// MARK: Form encoding

@Test func formEncodeKeepsUnreservedAndEscapesEverythingElse() {
    #expect(
        HTTPClientRequest.formEncode([("a", "1+2=3&4%5"), ("b c", "é.~-_Zz09")])
            == "a=1%2B2%3D3%264%255&b%20c=%C3%A9.~-_Zz09")
    #expect(HTTPClientRequest.formEncode([]) == "")
    #expect(HTTPClientRequest.formEncode([("k", "")]) == "k=")
    #expect(
        HTTPClientRequest.formEncode([("x", "/?#[]@!$'()*,;:")]) == "x=%2F%3F%23%5B%5D%40%21%24%27%28%29%2A%2C%3B%3A")
}

@Test func formRequestIsAPostWithTheFormContentType() {
    let request = HTTPClientRequest.form(
        url: "http://x/token", fields: [("a", "b")], headers: [("Accept", "application/json")])
    #expect(request.method == "POST")
    #expect(request.headers.first(where: { $0.0 == "Content-Type" })?.1 == "application/x-www-form-urlencoded")
    #expect(request.headers.contains(where: { $0 == ("Accept", "application/json") }))
    #expect(request.body == Array("a=b".utf8))
}

@Test func durationsBecomeAtLeastOneMillisecondForCurl() {
    #expect(Duration.milliseconds(300).curlMilliseconds == 300)
    #expect(Duration.seconds(15).curlMilliseconds == 15000)
    #expect(Duration.microseconds(10).curlMilliseconds == 1)
    #expect(Duration.zero.curlMilliseconds == 1)
    #expect(Duration.seconds(-3).curlMilliseconds == 1)
}

// MARK: Requests against a real server

@Test func formPostDeliversTheExactEncodedBodyAndContentType() async throws {
    let fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "5Aep861+abc=def&x%y/z"),
        ("client_id", "3MVG9.ü€ 😀"),
        ("a b", "c.d-e_f~g"),
        ("empty", ""),
    ]
    try await withClientAndServer { client, server in
        let response = try await client.send(.form(url: server.url + "/echo", fields: fields))
        #expect(response.status == 200)
        let received = try #require(server.requests.last)
        #expect(received.method == "POST")
        #expect(received.path == "/echo")
        #expect(received.header("Content-Type") == "application/x-www-form-urlencoded")
        #expect(received.body == Array(HTTPClientRequest.formEncode(fields).utf8))
        let decoded = formDecode(String(decoding: received.body, as: UTF8.self))
        #expect(decoded.map(\.0) == fields.map(\.0))
        #expect(decoded.map(\.1) == fields.map(\.1))
        #expect(response.body == received.body)
    }
}

@Test func getReturnsStatusHeadersAndBody() async throws {
    try await withClientAndServer { client, server in
        let response = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/headers"))
        #expect(response.status == 201)
        #expect(response.body == Array("hello".utf8))
        #expect(response.header("x-custom-header") == "Value-1")
        #expect(response.header("X-LOWER") == "two")
        #expect(response.headers.contains(where: { $0 == ("x-lower", "two") }), "names as received")
        #expect(response.headers.filter { $0.0 == "Set-Cookie" }.map(\.1) == ["a=1", "b=2"])
        #expect(response.header("Content-Length") == "5")
        #expect(response.header("missing") == nil)
        #expect(server.requests.last?.method == "GET")
        #expect(server.requests.last?.body == [])
    }
}

@Test func errorStatusesAreResponsesNotErrors() async throws {
    try await withClientAndServer { client, server in
        let notFound = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/status/404"))
        #expect(notFound.status == 404)
        let failed = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/status/503"))
        #expect(failed.status == 503)
        #expect(failed.body == Array("status 503".utf8))
    }
}

@Test func redirectsAreNotFollowed() async throws {
    try await withClientAndServer { client, server in
        let response = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/redirect"))
        #expect(response.status == 302)
        #expect(response.header("Location") == "/echo")
        #expect(server.requests.count == 1)
    }
}

@Test func otherMethodsCarryTheirBodies() async throws {
    try await withClientAndServer { client, server in
        let put = try await client.send(
            HTTPClientRequest(
                method: "PUT", url: server.url + "/echo", headers: [("Content-Type", "text/plain")],
                body: Array("put body".utf8)))
        #expect(put.body == Array("put body".utf8))
        _ = try await client.send(HTTPClientRequest(method: "DELETE", url: server.url + "/thing"))
        let emptyPost = try await client.send(HTTPClientRequest(method: "POST", url: server.url + "/echo"))
        #expect(emptyPost.status == 200)
        let received = server.requests
        #expect(received.map(\.method) == ["PUT", "DELETE", "POST"])
        #expect(received[0].header("Content-Type") == "text/plain")
        #expect(received[2].header("Content-Length") == "0")
        #expect(received[2].body == [])
    }
}

@Test func largePostSendsNoExpectHeaderAndTheConfiguredUserAgent() async throws {
    let configuration = HTTPClientConfiguration(userAgent: "tgw-test/1")
    let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }  // includes NUL bytes
    try await withClientAndServer(configuration) { client, server in
        let start = ContinuousClock.now
        let response = try await client.send(
            HTTPClientRequest(
                method: "POST", url: server.url + "/echo", headers: [("Content-Type", "application/octet-stream")],
                body: body))
        timing("200 KB POST echoed", seconds(since: start))
        #expect(response.body == body)
        let received = try #require(server.requests.last)
        #expect(received.header("Expect") == nil)
        #expect(received.header("User-Agent") == "tgw-test/1")
        #expect(received.body == body)
    }
}

// MARK: Timeouts and connection failures

@Test func totalTimeoutFailsWithTimeout() async throws {
    try await withClientAndServer { client, server in
        let (error, elapsed) = await failure {
            try await client.send(
                HTTPClientRequest(method: "GET", url: server.url + "/delay/2000", timeout: .milliseconds(300)))
        }
        timing("300 ms timeout against a 2 s answer", elapsed)
        let clientError = try #require(error as? HTTPClientError)
        #expect(clientError.kind == .timeout)
        #expect(clientError.code == 28)
        #expect(clientError.mayHaveReachedServer)
        #expect(elapsed >= 0.29 && elapsed < 1.0)
    }
}

@Test func timeoutOnAReusedConnectionIsATimeoutNotAConnectTimeout() async throws {
    let configuration = HTTPClientConfiguration(totalTimeout: .milliseconds(300))
    try await withClientAndServer(configuration) { client, server in
        _ = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/"))
        let (error, _) = await failure {
            try await client.send(HTTPClientRequest(method: "POST", url: server.url + "/delay/2000", body: [1, 2, 3]))
        }
        let clientError = try #require(error as? HTTPClientError)
        #expect(clientError.kind == .timeout)
        #expect(clientError.mayHaveReachedServer)
        #expect(server.acceptedConnections == 1)
        #expect(server.requests.count == 2)
    }
}

@Test func refusedConnectionFailsFastAndWasNotSent() async throws {
    let port = try freeLocalPort()  // free a moment ago, so nobody listens there
    let client = try HTTPClient(configuration: HTTPClientConfiguration(), logger: testLogger)
    defer { client.shutdown() }
    let (error, elapsed) = await failure {
        try await client.send(.form(url: "http://127.0.0.1:\(port)/token", fields: [("secret", "s3cr3t-value")]))
    }
    timing("refused connection", elapsed)
    let clientError = try #require(error as? HTTPClientError)
    #expect(clientError.kind == .couldNotConnect)
    #expect(clientError.code == 7)
    #expect(!clientError.mayHaveReachedServer)
    #expect(!clientError.description.contains("s3cr3t"))
    #expect(elapsed < 1.0)
}

@Test func unansweredHandshakeFailsWithConnectTimeout() async throws {
    let blackhole = try BlackholeListener()
    defer { blackhole.close() }
    let configuration = HTTPClientConfiguration(connectTimeout: .milliseconds(300), totalTimeout: .seconds(5))
    let client = try HTTPClient(configuration: configuration, logger: testLogger)
    defer { client.shutdown() }
    let (error, elapsed) = await failure {
        try await client.send(HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(blackhole.port)/?token=abc123"))
    }
    timing("300 ms connect timeout", elapsed)
    let clientError = try #require(error as? HTTPClientError)
    #expect(clientError.kind == .connectTimeout)
    #expect(clientError.code == 28)
    #expect(!clientError.mayHaveReachedServer)
    #expect(!clientError.message.contains("abc123"))
    #expect(elapsed >= 0.29 && elapsed < 1.5)
}

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

// MARK: TLS

@Test func httpsToAPlainHTTPServerFailsWithTLS() async throws {
    try await withClientAndServer { client, server in
        let (error, elapsed) = await failure {
            try await client.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(server.port)/"))
        }
        timing("https against plain http", elapsed)
        let clientError = try #require(error as? HTTPClientError)
        #expect(clientError.kind == .tls)
        #expect(clientError.code == 35)
        #expect(!clientError.mayHaveReachedServer)
        #expect(server.requests.isEmpty)
    }
}

private let opensslPath = "/usr/bin/openssl"

@Test func httpsWithAnUntrustedCertificateFailsVerification() async throws {
    // Never skipped: without openssl this fails, saying what to install (scripts/test.sh installs it).
    try #require(
        FileManager.default.isExecutableFile(atPath: opensslPath), "needs the openssl command: apt-get install openssl")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-tls-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let made = try runProgram(
        opensslPath,
        [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out",
            directory + "/cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ], timeoutSeconds: 60)
    try #require(made.status == 0, "openssl req: \(made.output)")

    let port = try freeLocalPort()
    let server = Process()
    server.executableURL = URL(fileURLWithPath: opensslPath)
    server.arguments = [
        "s_server", "-accept", "127.0.0.1:\(port)", "-cert", directory + "/cert.pem", "-key", directory + "/key.pem",
        "-www", "-quiet",
    ]
    server.standardOutput = FileHandle.nullDevice
    server.standardError = FileHandle.nullDevice
    server.standardInput = FileHandle.nullDevice
    try server.run()
    defer {
        // SIGKILL: the child inherits the spawning thread's signal mask, in which SIGTERM is blocked.
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
    }
    let listening = await eventually(within: 10) { canConnect(port: port) }
    try #require(listening, "openssl s_server did not listen")

    let client = try HTTPClient(configuration: HTTPClientConfiguration(), logger: testLogger)
    defer { client.shutdown() }
    let (error, elapsed) = await failure {
        try await client.send(HTTPClientRequest(method: "GET", url: "https://127.0.0.1:\(port)/"))
    }
    timing("https with a self-signed certificate", elapsed)
    let clientError = try #require(error as? HTTPClientError)
    #expect(clientError.kind == .tls)
    #expect(clientError.code == 60, "CURLE_PEER_FAILED_VERIFICATION: \(clientError.message)")
    #expect(!clientError.mayHaveReachedServer)
}

private func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    } == 0
}

// MARK: Limits, validation, lifecycle

@Test func responsesLargerThanTheLimitFail() async throws {
    let configuration = HTTPClientConfiguration(maxResponseBytes: 1000)
    try await withClientAndServer(configuration) { client, server in
        let exact = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/bytes/1000"))
        #expect(exact.body.count == 1000)
        let streamedExact = try await client.send(HTTPClientRequest(method: "GET", url: server.url + "/stream/1000"))
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
