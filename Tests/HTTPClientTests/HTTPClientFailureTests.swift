import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import HTTPClient

/// Timeouts, refused and unanswered connections, and TLS failures.
@Suite struct HTTPClientFailureTests {
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
                try await client.send(
                    HTTPClientRequest(method: "POST", url: server.url + "/delay/2000", body: [1, 2, 3]))
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
            try await client.send(
                HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(blackhole.port)/?token=abc123"))
        }
        timing("300 ms connect timeout", elapsed)
        let clientError = try #require(error as? HTTPClientError)
        #expect(clientError.kind == .connectTimeout)
        #expect(clientError.code == 28)
        #expect(!clientError.mayHaveReachedServer)
        #expect(!clientError.message.contains("abc123"))
        #expect(elapsed >= 0.29 && elapsed < 1.5)
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
            FileManager.default.isExecutableFile(atPath: opensslPath),
            "needs the openssl command: apt-get install openssl")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tgw-tls-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try runProgram(
            opensslPath,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out",
                directory + "/cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                "subjectAltName=IP:127.0.0.1",
            ], timeoutSeconds: 60)
        try #require(made.status == 0, "openssl req: \(made.output)")

        let port = try freeLocalPort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: opensslPath)
        server.arguments = [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", directory + "/cert.pem", "-key",
            directory + "/key.pem",
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
}
