import Foundation
import TestSupport
import Testing

@testable import HTTPServer

/// A configuration for the tests below: loopback, port 0, two workers, production defaults otherwise.
func loopbackConfiguration(_ change: (inout HTTPServerConfiguration) -> Void = { _ in }) -> HTTPServerConfiguration {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0, threads: 2)
    change(&configuration)
    return configuration
}

/// Waits (bounded) until the server's count of open connections satisfies `done`; true when it did.
@discardableResult
func waitForOpenConnections(_ server: HTTPServer, _ done: (Int) -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(5)
    while !done(server.openConnectionCount) && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
    return done(server.openConnectionCount)
}

/// Slow, silent and idle clients against a real server (issue 10: connection exhaustion).
@Suite("Slow and idle clients", .serialized)
struct ConnectionLimitTests {
    @Test func slowlorisClientsAreCutAtTheHeaderDeadlineWhileNewClientsAreServedWithinASecond() async throws {
        let slowCount = 1_100
        #expect(raiseOpenFileLimit(to: 4 * slowCount + 512) >= 4 * slowCount + 512)
        // The idle timeout is short, but one byte every 2 s would restart libmicrohttpd's own timer forever.
        let configuration = loopbackConfiguration { $0.connectionTimeoutSeconds = 5 }
        try await withServer(configuration: configuration) { server in
            let port = server.port
            let clock = ContinuousClock()
            let start = clock.now
            let done = Flag()
            async let probing = onThread { () -> [(status: Int, elapsed: Duration)] in
                var probes: [(status: Int, elapsed: Duration)] = []
                while !done.isSet && clock.now - start < .seconds(25) {
                    probes.append(probeHealth(port: port))
                    usleep(200_000)
                }
                return probes
            }
            let cut = try await onThread { () -> [Duration?] in
                defer { done.set() }
                let swarm = try SocketSwarm(count: slowCount, port: port)
                swarm.sendToOpen(Array("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8))
                while swarm.openCount > 0 && clock.now - start < .seconds(25) {
                    swarm.collectClosures(waiting: .seconds(2))
                    swarm.sendToOpen([UInt8(ascii: "a")])
                }
                return swarm.closedAt.map { $0.map { $0 - start } }
            }
            let probes = try await probing
            let cutTimes = cut.compactMap { $0 }
            let slowest = probes.map(\.elapsed).max() ?? .zero
            print(
                "slowloris x\(slowCount): \(probes.count) /healthz probes, slowest \(slowest), failed "
                    + "\(probes.filter { $0.status != 200 }.count); slow connections cut between "
                    + "\(cutTimes.min() ?? .zero) and \(cutTimes.max() ?? .zero), \(cut.count - cutTimes.count) never")
            #expect(cutTimes.count == slowCount)
            #expect((cutTimes.max() ?? .seconds(99)) <= .seconds(16))
            // Held until their header deadline, not refused at accept.
            #expect((cutTimes.min() ?? .zero) >= .seconds(9))
            #expect(probes.count >= 20)
            #expect(probes.allSatisfy { $0.status == 200 })
            #expect(slowest < .seconds(1))
            // Every cut connection was closed and forgotten, and its request context released.
            #expect(try await waitForNoActiveRequests(server) == 0)
            #expect(try await waitForOpenConnections(server) { $0 == 0 })
        }
    }

    @Test func thousandsOfSilentConnectionsStayOpenAndANewClientIsServedWithinTwoSeconds() async throws {
        let silentCount = 3_000
        #expect(raiseOpenFileLimit(to: 2 * silentCount + 512) >= 2 * silentCount + 512)
        try await withServer(configuration: loopbackConfiguration()) { server in
            let port = server.port
            let swarm = try await onThread { try SocketSwarm(count: silentCount, port: port) }
            try await waitForOpenConnections(server) { $0 >= silentCount }
            let probes = try await onThread { (0..<5).map { _ in probeHealth(port: port) } }
            try await onThread { swarm.collectClosures(waiting: .milliseconds(100)) }
            print(
                "silent x\(silentCount): server counts \(server.openConnectionCount) open; /healthz took "
                    + "\(probes.map(\.elapsed)); \(swarm.openCount) silent still open")
            #expect(probes.allSatisfy { $0.status == 200 && $0.elapsed < .seconds(2) })
            #expect(swarm.openCount == silentCount)
        }
    }

    @Test func atTheConnectionLimitTheOldestIdleConnectionIsShedInsteadOfTheNewClient() async throws {
        let configuration = loopbackConfiguration { $0.maxConnections = 20 }
        try await withServer(configuration: configuration) { server in
            let port = server.port
            // The oldest connection is busy (its answer is deferred): it must not be the one shed.
            let busy = try RawConnection(port: port)
            try busy.write("GET", "/sleep/1500")
            try await waitForOpenConnections(server) { $0 >= 1 }
            let idle = try await onThread { try SocketSwarm(count: 19, port: port, pause: .milliseconds(5)) }
            try await waitForOpenConnections(server) { $0 >= 20 }
            // The first newcomer keeps its connection (now idle, but the most recent to wait).
            let clock = ContinuousClock()
            let start = clock.now
            let kept = try RawConnection(port: port, timeoutSeconds: 2)
            let first = try await onThread { try kept.request("GET", "/healthz") }
            #expect(clock.now - start < .seconds(1))
            try await onThread { idle.collectClosures(waiting: .milliseconds(300)) }
            #expect(first.status == 200)
            #expect(!idle.isOpen(0))
            #expect(idle.openCount == 18)
            let second = try await onThread { probeHealth(port: port, timeoutSeconds: 2) }
            try await onThread { idle.collectClosures(waiting: .milliseconds(300)) }
            #expect(second.status == 200)
            #expect(!idle.isOpen(1))
            #expect(idle.openCount == 17)
            #expect(!kept.isClosedNow())
            let answer = try await onThread { try busy.readResponse() }
            #expect(answer.status == 200)
            #expect(answer.text == "slept 1500")
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosedAtTheIdleTimeoutHoweverItDribbles() async throws {
        let configuration = loopbackConfiguration { $0.connectionTimeoutSeconds = 2 }
        try await withServer(configuration: configuration) { server in
            let port = server.port
            let clock = ContinuousClock()
            async let active = onThread { () -> [Int] in
                // A client that pauses 0.5 s between requests is never idle for 2 s: it keeps its connection.
                let connection = try RawConnection(port: port)
                var statuses: [Int] = []
                for _ in 0..<8 {
                    statuses.append(try connection.request("GET", "/hello").status)
                    usleep(500_000)
                }
                return statuses
            }
            let (answer, closedAfter) = try await onThread { () -> (Int, Duration?) in
                let connection = try RawConnection(port: port, timeoutSeconds: 1)
                let status = try connection.request("GET", "/hello").status
                let answered = clock.now
                var line = Array(("GET /" + String(repeating: "a", count: 100)).utf8)[...]
                while clock.now - answered < .seconds(8) {
                    if connection.isClosedNow() { return (status, clock.now - answered) }
                    if let byte = line.popFirst() { try? connection.writeAll([byte]) }
                    usleep(100_000)
                }
                return (status, nil)
            }
            #expect(answer == 200)
            let closed = try #require(closedAfter, "the dribbling connection was never closed")
            #expect(closed >= .milliseconds(1900))
            #expect(closed <= .milliseconds(3500))
            #expect(try await active == Array(repeating: 200, count: 8))
        }
    }

    @Test func headersMustArriveWithinTheHeaderTimeoutOnNewAndKeptAliveConnections() async throws {
        let configuration = loopbackConfiguration {
            $0.connectionTimeoutSeconds = 30
            $0.headerTimeoutSeconds = 1
        }
        try await withServer(configuration: configuration) { server in
            let port = server.port
            let clock = ContinuousClock()
            let cutAfter = try await onThreads(2) { index -> Duration? in
                let connection = try RawConnection(port: port, timeoutSeconds: 1)
                if index == 1 { _ = try connection.request("GET", "/hello") }
                let start = clock.now
                try connection.writeAll(Array("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8))
                var sent = 0
                while clock.now - start < .seconds(6) {
                    if connection.isClosedNow() { return clock.now - start }
                    if sent % 3 == 0 { try? connection.writeAll([UInt8(ascii: "a")]) }
                    sent += 1
                    usleep(100_000)
                }
                return nil
            }
            for cut in cutAfter {
                let cut = try #require(cut, "a connection dribbling headers was never cut")
                #expect(cut >= .milliseconds(900))
                #expect(cut <= .milliseconds(2500))
            }
        }
    }
}
