import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import HTTPServer

/// A logger that keeps test output quiet unless something is wrong.
let quietLogger: Logger = {
    var logger = Logger(label: "http-server-tests")
    logger.logLevel = .warning
    return logger
}()

/// The routes the integration tests serve.
func testRouter() -> Router {
    var router = Router()
    router.add("GET", "/hello") { request, _ in
        .response(HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: Array("hello".utf8)))
    }
    router.add("POST", "/hello") { request, _ in .response(HTTPResponse(status: 201)) }
    router.add("GET", "/id") { request, _ in
        .response(HTTPResponse(status: 200, body: Array(request.requestID.utf8)))
    }
    router.add("POST", "/echo") { request, _ in
        let json = "{\"tooLarge\":\(request.bodyTooLarge),\"length\":\(request.body.count)}"
        return .response(.json(status: 200, Array(json.utf8)))
    }
    router.add("GET", "/inspect/{name}") { request, parameters in
        let items = request.queryItems().map { ["name": $0.0, "value": $0.1] }
        let object: [String: Any] = [
            "method": request.method, "path": request.path, "query": request.query, "items": items,
            "name": parameters["name"] ?? "", "remote": request.remoteAddress,
            "agent": request.headers["USER-AGENT"] ?? "",
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return .response(.json(status: 200, Array(data)))
    }
    router.add("GET", "/sleep/{ms}") { request, parameters in
        let milliseconds = Int(parameters["ms"] ?? "") ?? 0
        return .deferred {
            try? await Task.sleep(for: .milliseconds(milliseconds))
            return HTTPResponse(status: 200, body: Array("slept \(milliseconds)".utf8))
        }
    }
    router.add("GET", "/bad-header") { _, _ in
        .response(HTTPResponse(status: 200, headers: ["X-Bad": "a\r\nInjected: yes"]))
    }
    router.add("GET", "/bad-status") { _, _ in .response(HTTPResponse(status: 42)) }
    router.add("DELETE", "/empty") { _, _ in .response(HTTPResponse(status: 204)) }
    router.add("GET", "/healthz") { _, _ in .response(.json(status: 200, Array("{\"status\":\"ok\"}".utf8))) }
    router.add("GET", "/method") { request, _ in
        .response(HTTPResponse(status: 200, headers: ["X-Method": request.method], body: Array("seen".utf8)))
    }
    return router
}

/// Starts a server on 127.0.0.1:0, runs `body`, and always shuts the server down.
func withServer(
    threads: Int = 2, maxBodyBytes: Int = 65536, handler: some HTTPHandler = testRouter(),
    configuration custom: HTTPServerConfiguration? = nil, _ body: (HTTPServer) async throws -> Void
) async throws {
    let configuration =
        custom
        ?? HTTPServerConfiguration(
            host: "127.0.0.1", port: 0, threads: threads, connectionTimeoutSeconds: 10, maxBodyBytes: maxBodyBytes)
    let server = HTTPServer(configuration: configuration, handler: handler, logger: quietLogger)
    try server.start()
    do {
        try await body(server)
    } catch {
        await server.shutdown(gracePeriod: .seconds(1))
        throw error
    }
    await server.shutdown(gracePeriod: .seconds(1))
}

/// Waits (bounded) until the server has released every request context.
func waitForNoActiveRequests(_ server: HTTPServer) async throws -> Int {
    let deadline = ContinuousClock.now + .seconds(3)
    while server.activeRequestCount != 0 && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
    return server.activeRequestCount
}

@Suite("HTTPServer over real sockets")
struct HTTPServerTests {
    @Test func concurrentKeepAliveLoadIsServedAndEveryRequestIDIsEchoed() async throws {
        try await withServer { server in
            let port = server.port
            #expect(port > 0)
            let failures = try await onThreads(8) { connectionIndex -> [String] in
                let connection = try RawConnection(port: port)
                var failures: [String] = []
                for requestIndex in 0..<200 {
                    let id = "load-\(connectionIndex)-\(requestIndex)"
                    let response = try connection.request("GET", "/hello", headers: [("X-Request-Id", id)])
                    if response.status != 200 || response.text != "hello" || response.header("X-Request-Id") != id
                        || response.header("Content-Length") != "5"
                    {
                        failures.append("\(id): \(response.status) \(response.headers)")
                    }
                }
                return failures
            }
            #expect(failures.flatMap { $0 }.isEmpty)
            // Every per-request context was released (no leak through *con_cls).
            #expect(try await waitForNoActiveRequests(server) == 0)
        }
    }

    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        try await withServer { server in
            let port = server.port
            let (notFound, notAllowed, after) = try await onThread {
                let connection = try RawConnection(port: port)
                return (
                    try connection.request("GET", "/nowhere"), try connection.request("DELETE", "/hello"),
                    try connection.request("GET", "/hello")
                )
            }
            #expect(notFound.status == 404)
            #expect(notFound.header("Content-Type") == "application/json")
            #expect(notFound.json?["error"] as? String == "not_found")
            #expect(notFound.json?["message"] is String)
            #expect(notFound.header("X-Request-Id")?.isEmpty == false)
            #expect(notAllowed.status == 405)
            #expect(notAllowed.header("Allow") == "GET, POST")
            #expect(notAllowed.json?["error"] as? String == "method_not_allowed")
            #expect(Int(notAllowed.header("Content-Length") ?? "") == notAllowed.body.count)
            // The connection survived both errors.
            #expect(after.status == 200)
        }
    }

    @Test func oversizeBodyReachesTheHandlerAsTooLargeAndKeepsTheConnection() async throws {
        try await withServer(maxBodyBytes: 1024) { server in
            let port = server.port
            let (small, large, exact, after) = try await onThread {
                let connection = try RawConnection(port: port)
                return (
                    try connection.request("POST", "/echo", body: Array(repeating: 65, count: 100)),
                    try connection.request("POST", "/echo", body: Array(repeating: 66, count: 200_000)),
                    try connection.request("POST", "/echo", body: Array(repeating: 67, count: 1024)),
                    try connection.request("GET", "/hello")
                )
            }
            #expect(small.status == 200)
            #expect(small.json?["tooLarge"] as? Bool == false)
            #expect(small.json?["length"] as? Int == 100)
            // The server did not answer 413 by itself: the handler ran and saw the flag, with an empty body.
            #expect(large.status == 200)
            #expect(large.json?["tooLarge"] as? Bool == true)
            #expect(large.json?["length"] as? Int == 0)
            #expect(exact.json?["tooLarge"] as? Bool == false)
            #expect(exact.json?["length"] as? Int == 1024)
            #expect(after.status == 200)
        }
    }

    @Test func aDeferredRequestDoesNotHoldTheOnlyWorkerThread() async throws {
        try await withServer(threads: 1) { server in
            let port = server.port
            let slow = try RawConnection(port: port)
            let clock = ContinuousClock()
            let started = clock.now
            try slow.write("GET", "/sleep/500")
            try await Task.sleep(for: .milliseconds(50))
            let (fastResponse, fastElapsed) = try await onThread {
                let fast = try RawConnection(port: port)
                let fastStart = clock.now
                let response = try fast.request("GET", "/hello")
                return (response, clock.now - fastStart)
            }
            #expect(fastResponse.status == 200)
            #expect(fastElapsed < .milliseconds(200))
            let slowResponse = try await onThread { try slow.readResponse() }
            #expect(slowResponse.status == 200)
            #expect(slowResponse.text == "slept 500")
            #expect(clock.now - started >= .milliseconds(500))
            // The resumed connection is still usable (keep-alive after resume).
            let again = try await onThread { try slow.request("GET", "/hello") }
            #expect(again.status == 200)
        }
    }

    @Test func gracefulShutdownFinishesInFlightRequestsAndRefusesNewConnections() async throws {
        let configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0, threads: 2)
        let server = HTTPServer(configuration: configuration, handler: testRouter(), logger: quietLogger)
        try server.start()
        let port = server.port
        let inFlight = try RawConnection(port: port)
        try inFlight.write("GET", "/sleep/400")
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let shutdownStart = clock.now
        let shutdown = Task { await server.shutdown(gracePeriod: .seconds(5)) }
        try await Task.sleep(for: .milliseconds(100))
        // During the grace period new connections are refused at once.
        let refusedDuringGrace = try await onThread { () -> Bool in
            do {
                _ = try RawConnection(port: port, timeoutSeconds: 1)
                return false
            } catch let error as ClientError {
                return error.description == "refused"
            }
        }
        #expect(refusedDuringGrace)
        let response = try await onThread { try inFlight.readResponse() }
        #expect(response.status == 200)
        #expect(response.text == "slept 400")
        #expect(response.header("Connection")?.lowercased() == "close")
        await shutdown.value
        #expect(clock.now - shutdownStart < .seconds(3))
        #expect(throws: ClientError.self) { try RawConnection(port: port, timeoutSeconds: 1) }
        #expect(server.activeRequestCount == 0)
        // Idempotent.
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func requestsStillSuspendedAtShutdownGet503() async throws {
        let configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0, threads: 2)
        let server = HTTPServer(configuration: configuration, handler: testRouter(), logger: quietLogger)
        try server.start()
        let port = server.port
        let connections = try (0..<3).map { _ in try RawConnection(port: port) }
        for (index, connection) in connections.enumerated() {
            try connection.write("GET", "/sleep/5000", headers: [("X-Request-Id", "stuck-\(index)")])
        }
        try await Task.sleep(for: .milliseconds(100))
        let clock = ContinuousClock()
        let start = clock.now
        async let stopped: Void = server.shutdown(gracePeriod: .milliseconds(200))
        let responses = try await onThreads(3) { index in try connections[index].readResponse() }
        await stopped
        #expect(clock.now - start < .seconds(3))
        for (index, response) in responses.enumerated() {
            #expect(response.status == 503)
            #expect(response.json?["error"] as? String == "unavailable")
            #expect(response.header("X-Request-Id") == "stuck-\(index)")
            #expect(response.header("X-Content-Type-Options") == "nosniff")
        }
        #expect(server.activeRequestCount == 0)
    }

    @Test func droppingARunningServerAnswersSuspendedRequestsInsteadOfAborting() async throws {
        var server: HTTPServer? = HTTPServer(
            configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0, threads: 1), handler: testRouter(),
            logger: quietLogger)
        try server?.start()
        let port = try #require(server?.port)
        let connection = try RawConnection(port: port)
        try connection.write("GET", "/sleep/5000")
        try await Task.sleep(for: .milliseconds(100))
        server = nil  // deinit stops the daemon; MHD_stop_daemon would abort with the request still suspended
        let response = try await onThread { try connection.readResponse() }
        #expect(response.status == 503)
        #expect(throws: ClientError.self) { try RawConnection(port: port, timeoutSeconds: 1) }
    }

    @Test func requestIDIsTakenWhenWellFormedAndGeneratedOtherwise() async throws {
        try await withServer { server in
            let port = server.port
            let long = String(repeating: "a", count: 129)
            let responses = try await onThread {
                let connection = try RawConnection(port: port)
                return try [
                    [("X-Request-Id", "abc-123.x:y_Z")], [("x-request-id", "bad id!")], [],
                    [("X-Request-Id", long)], [("X-Request-Id", String(repeating: "b", count: 128))],
                ].map { try connection.request("GET", "/id", headers: $0) }
            }
            // The handler saw the same id that the response carries.
            for response in responses { #expect(response.text == response.header("X-Request-Id")) }
            #expect(responses[0].text == "abc-123.x:y_Z")
            #expect(responses[4].text == String(repeating: "b", count: 128))
            for generated in [responses[1], responses[2], responses[3]] {
                #expect(generated.text.count == 32)
                #expect(generated.text.allSatisfy { $0.isHexDigit })
            }
            #expect(responses[1].text != responses[2].text)
        }
    }

    @Test func queryAndPathArriveRawAndDecodeOnRequest() async throws {
        try await withServer { server in
            let port = server.port
            let response = try await onThread {
                let connection = try RawConnection(port: port)
                return try connection.request(
                    "GET", "/inspect/a%2Fb%20c?x=a+b%26c&empty=&flag&u=%C3%A9", headers: [("User-Agent", "probe/1")])
            }
            #expect(response.status == 200)
            let json = try #require(response.json)
            #expect(json["path"] as? String == "/inspect/a%2Fb%20c")
            #expect(json["query"] as? String == "x=a+b%26c&empty=&flag&u=%C3%A9")
            #expect(json["name"] as? String == "a/b c")
            #expect(json["remote"] as? String == "127.0.0.1")
            #expect(json["agent"] as? String == "probe/1")
            let items = (json["items"] as? [[String: String]]) ?? []
            #expect(
                items == [
                    ["name": "x", "value": "a b&c"], ["name": "empty", "value": ""], ["name": "flag", "value": ""],
                    ["name": "u", "value": "é"],
                ])
        }
    }

    @Test func badHandlerOutputBecomes500WithoutCrashing() async throws {
        try await withServer { server in
            let port = server.port
            let (badHeader, badStatus, empty, after) = try await onThread {
                let connection = try RawConnection(port: port)
                return (
                    try connection.request("GET", "/bad-header"), try connection.request("GET", "/bad-status"),
                    try connection.request("DELETE", "/empty"), try connection.request("GET", "/hello")
                )
            }
            #expect(badHeader.status == 500)
            #expect(badHeader.header("Injected") == nil)
            #expect(badStatus.status == 500)
            #expect(badStatus.json?["error"] as? String == "internal_error")
            #expect(empty.status == 204)
            #expect(empty.header("X-Request-Id") != nil)
            #expect(after.status == 200)
        }
    }

    @Test func garbageAndAbortedRequestsNeitherCrashNorLeak() async throws {
        try await withServer { server in
            let port = server.port
            let status = try await onThread { () -> Int in
                for garbage in [
                    "\u{0}\u{1}\u{2}\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                    "GET /%%%ZZ%ff%00 HTTP/1.1\r\nHost: x\r\nX-Request-Id: \u{7f}\r\n\r\n",
                ] {
                    let connection = try RawConnection(port: port, timeoutSeconds: 1)
                    try connection.writeAll(Array(garbage.utf8))
                    _ = try? connection.readResponse()  // some get an error status, some none: only survival counts
                }
                // Clients that go away halfway through a body or while their answer is deferred.
                for request in [
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc",
                    "GET /sleep/50 HTTP/1.1\r\nHost: x\r\n\r\n",
                ] {
                    let connection = try RawConnection(port: port, timeoutSeconds: 1)
                    try connection.writeAll(Array(request.utf8))
                    usleep(20_000)
                }
                return try RawConnection(port: port).request("GET", "/hello").status
            }
            #expect(status == 200)
            #expect(try await waitForNoActiveRequests(server) == 0)
        }
    }

    @Test func startFailsWithAnErrorWhenThePortIsTaken() async throws {
        try await withServer { server in
            let second = HTTPServer(
                configuration: HTTPServerConfiguration(host: "127.0.0.1", port: server.port, threads: 1),
                handler: testRouter(), logger: quietLogger)
            #expect(throws: HTTPServerError.self) { try second.start() }
            let badHost = HTTPServer(
                configuration: HTTPServerConfiguration(host: "not-an-address", port: 0),
                handler: testRouter(), logger: quietLogger)
            #expect(throws: HTTPServerError.self) { try badHost.start() }
        }
    }
}
