import Foundation
import HTTPClient
import Logging
import TestSupport
import Testing

@testable import TokenGatewayCore

/// The `token-gateway` binary itself, as an operator runs it.
@Suite(.enabled(if: TestEnvironment.databaseURL != nil, "needs scripts/test.sh's PostgreSQL"))
struct CommandTests {
    /// The binary SwiftPM built next to the test bundle.
    static var binary: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = bundle.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("token-gateway").path),
            folder.path != "/"
        {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("token-gateway").path
    }

    static func environment(_ values: [String: String]) -> [String: String] {
        var environment = ["PATH": "/usr/bin:/bin"]
        for (name, value) in values { environment[name] = value }
        return environment
    }

    @Test func badSettingsRefuseToStartWithOneLineNamingTheSetting() async throws {
        let key = Keyring.generateKeyLine(id: "k1")
        let cases: [([String: String], String)] = [
            (
                ["DATABASE_URL": "postgresql://x@127.0.0.1/db", "TOKEN_GATEWAY_ENCRYPTION_KEYS": key],
                "TOKEN_GATEWAY_ADMIN_TOKEN"
            ),
            (
                [
                    "DATABASE_URL": "postgresql://x@127.0.0.1/db", "TOKEN_GATEWAY_ADMIN_TOKEN": "short",
                    "TOKEN_GATEWAY_ENCRYPTION_KEYS": key,
                ], "TOKEN_GATEWAY_ADMIN_TOKEN"
            ),
            (
                [
                    "DATABASE_URL": "postgresql://x@127.0.0.1/db",
                    "TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "changeme", count: 5),
                    "TOKEN_GATEWAY_ENCRYPTION_KEYS": key,
                ], "TOKEN_GATEWAY_ADMIN_TOKEN"
            ),
            (
                [
                    "DATABASE_URL": "postgresql://x@127.0.0.1/db",
                    "TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "0123456789ab", count: 3),
                    "TOKEN_GATEWAY_ENCRYPTION_KEYS": "k1:not-a-key",
                ], "TOKEN_GATEWAY_ENCRYPTION_KEYS"
            ),
        ]
        for (values, setting) in cases {
            let binary = Self.binary
            let result = try await offPool {
                try runProgram(binary, ["serve"], timeoutSeconds: 30, environment: Self.environment(values))
            }
            #expect(result.status == 2)
            let lines = result.output.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(setting), "\(result.output)")
            #expect(!result.output.contains("not-a-key"))
        }
    }

    @Test func keygenPrintsAUsableKey() async throws {
        let binary = Self.binary
        let result = try await offPool { try runProgram(binary, ["keygen", "--id", "prod1"], timeoutSeconds: 30) }
        #expect(result.status == 0)
        let keyring = try Keyring(parsing: result.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(keyring.primary.id == "prod1")
    }

    @Test func serveAnswersThenStopsCleanlyOnSIGTERM() async throws {
        let url = try await TestDatabase.make(prefix: "cli")
        let port = try freeLocalPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--log-format", "text"]
        process.environment = Self.environment([
            "DATABASE_URL": url, "TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "0123456789abcdef", count: 3),
            "TOKEN_GATEWAY_ENCRYPTION_KEYS": Keyring.generateKeyLine(id: "k1"),
        ])
        let log = Pipe()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let http = try HTTPClientForTests()
        let up = await eventually(within: 20) { (try? await http.status("http://127.0.0.1:\(port)/readyz")) == 200 }
        #expect(up)
        #expect(try await http.status("http://127.0.0.1:\(port)/healthz") == 200)
        let healthcheck = try await offPool {
            try runProgram(Self.binary, ["healthcheck", "--target", "127.0.0.1:\(port)"], timeoutSeconds: 20)
        }
        #expect(healthcheck.status == 0)
        kill(process.processIdentifier, SIGTERM)
        let exited = await eventually(within: 15) { !process.isRunning }
        #expect(exited)
        #expect(process.terminationStatus == 0)
        #expect((try? await http.status("http://127.0.0.1:\(port)/healthz")) == nil)
        http.shutdown()
    }
}

/// A thin use of the project's HTTP client for status checks.
struct HTTPClientForTests {
    let client: HTTPClient
    init() throws {
        client = try HTTPClient(
            configuration: HTTPClientConfiguration(connectTimeout: .seconds(2), totalTimeout: .seconds(5)),
            logger: Logger(label: "test"))
    }
    func status(_ url: String) async throws -> Int {
        try await client.send(HTTPClientRequest(method: "GET", url: url)).status
    }
    func shutdown() { client.shutdown() }
}
