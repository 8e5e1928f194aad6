import Foundation
import HTTPClient
import Logging
import TestSupport
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// The `token-gateway` binary itself, as an operator runs it.
@Suite
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
            (
                [
                    "DATABASE_URL": "postgresql://x@127.0.0.1/db",
                    "TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "0123456789ab", count: 3),
                    "TOKEN_GATEWAY_ENCRYPTION_KEYS": key, "TOKEN_GATEWAY_LOG_LEVEL": "loud",
                ], "TOKEN_GATEWAY_LOG_LEVEL"
            ),
        ]
        for (values, setting) in cases {
            let binary = Self.binary
            let result = try await onThread {
                try runProgram(binary, ["serve"], timeoutSeconds: 30, environment: Self.environment(values))
            }
            #expect(result.status == 2)
            let lines = result.output.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(setting), "\(result.output)")
            #expect(!result.output.contains("not-a-key"))
        }
    }

    /// Runs `token-gateway` with `arguments` and only `values` (and PATH) in its environment.
    static func run(_ arguments: [String], _ values: [String: String] = [:]) async throws -> (
        status: Int32, output: String
    ) {
        let binary = Self.binary
        return try await onThread {
            try runProgram(binary, arguments, timeoutSeconds: 60, environment: Self.environment(values))
        }
    }

    @Test func aBadLogSettingRefusesEveryCommandThatLogsWithOneLine() async throws {
        let url = "postgresql://x@127.0.0.1:1/db"
        let cases: [([String], [String: String], String)] = [
            (["migrate"], ["DATABASE_URL": url, "TOKEN_GATEWAY_LOG_LEVEL": "loud"], "TOKEN_GATEWAY_LOG_LEVEL"),
            (["migrate", "--log-level", "verbose"], ["DATABASE_URL": url], "TOKEN_GATEWAY_LOG_LEVEL"),
            (["migrate", "--log-format", "xml"], ["DATABASE_URL": url], "TOKEN_GATEWAY_LOG_FORMAT"),
            (["migrate"], [:], "DATABASE_URL"),
            (
                ["rekey", "--log-level", "loud"],
                [
                    "DATABASE_URL": url, "TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "0123456789abcdef", count: 2),
                    "TOKEN_GATEWAY_ENCRYPTION_KEYS": Keyring.generateKeyLine(id: "k1"),
                ], "TOKEN_GATEWAY_LOG_LEVEL"
            ),
        ]
        for (arguments, values, setting) in cases {
            let result = try await Self.run(arguments, values)
            #expect(result.status == 2, "\(arguments): \(result.output)")
            let lines = result.output.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("token-gateway: configuration error: \(setting) "))
        }
    }

    @Test func migrateAppliesTheSchemaOnceThenFindsNothingToDo() async throws {
        let url = try await TestDatabase.make(prefix: "cli")
        let first = try await Self.run(["migrate"], ["DATABASE_URL": url])
        #expect(first.status == 0, "\(first.output)")
        let done = try #require(first.output.split(separator: "\n").last.map(String.init))
        let line = try JSONValue.parse(Array(done.utf8))
        #expect(line["msg"]?.stringValue == "migrations done")
        #expect(line["version"]?.stringValue == "\(GatewaySchema.latestVersion)")
        #expect(line["applied"]?.stringValue != "[]")

        // Again, with the flag instead of the variable and text logs: nothing left to apply.
        let second = try await Self.run(["migrate", "--database-url", url, "--log-format", "text"])
        #expect(second.status == 0, "\(second.output)")
        #expect(second.output.contains(" INFO migrations done applied=[] version=\(GatewaySchema.latestVersion)"))
        #expect(!second.output.contains("{"))
        let version = try await onThread {
            try TemporaryPostgres.psql(url: url, "SELECT max(version) FROM schema_migrations")
        }
        #expect(version == "\(GatewaySchema.latestVersion)")

        // The level is honoured: at warning, a successful run says nothing.
        let quiet = try await Self.run(["migrate"], ["DATABASE_URL": url, "TOKEN_GATEWAY_LOG_LEVEL": "warning"])
        #expect(quiet.status == 0 && quiet.output.isEmpty, "\(quiet.output)")

        // No database there: one critical line and status 1, not a crash.
        let refused = try await Self.run(
            ["migrate"], ["DATABASE_URL": "postgresql://x@127.0.0.1:\(try freeLocalPort())/db"])
        #expect(refused.status == 1)
        #expect(refused.output.contains(#""level":"critical","msg":"migrations failed""#), "\(refused.output)")
    }

    @Test func rekeyResealsUnderTheFirstKeyAndThenHasNothingToDo() async throws {
        let old = Keyring.generateKeyLine(id: "old")
        let url = try await TestDatabase.make(prefix: "cli")
        let harness = try await GatewayHarness.start(databaseURL: url, keys: old)
        _ = try await harness.tenantWithKey("acme")
        try await harness.authorizationCodeClient()
        await harness.stop()

        let values = [
            "DATABASE_URL": url, "TOKEN_GATEWAY_ADMIN_TOKEN": GatewayHarness.adminToken,
            "TOKEN_GATEWAY_ENCRYPTION_KEYS": Keyring.generateKeyLine(id: "new") + "," + old,
        ]
        let first = try await Self.run(["rekey"], values)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains(#""msg":"rekey done""#) && first.output.contains(#""resealed":"1""#))
        let sealed = try await onThread { try TemporaryPostgres.psql(url: url, "SELECT client_secret FROM clients") }
        #expect(sealed.hasPrefix("new:"))
        let second = try await Self.run(["rekey", "--log-format", "text"], values)
        #expect(second.status == 0 && second.output.contains("INFO rekey done key=new resealed=0"), "\(second.output)")
    }

    @Test func keygenPrintsAUsableKey() async throws {
        let named = try await Self.run(["keygen", "--id", "prod1"])
        #expect(named.status == 0)
        let keyring = try Keyring(parsing: named.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(keyring.primary.id == "prod1")
        let dated = try await Self.run(["keygen"])
        #expect(dated.status == 0)
        #expect(
            try Keyring(parsing: dated.output.trimmingCharacters(in: .whitespacesAndNewlines)).primary.id.hasPrefix("k")
        )
    }

    @Test func everyCommandExplainsItselfWithHelp() async throws {
        let settingFlags = [
            "--database-url", "--admin-token", "--encryption-keys", "--listen", "--public-url", "--upstream-allowlist",
            "--upstream-timeout-seconds", "--upstream-connect-timeout-seconds", "--max-body-bytes",
            "--force-refresh-grace-seconds", "--log-format", "--log-level", "--threads", "--db-pool-size",
            "--max-connections", "--idle-timeout-seconds", "--shutdown-grace-seconds",
            "--key-upstream-limit-per-minute",
        ]
        let expected: [(String?, [String])] = [
            (nil, ["serve", "migrate", "keygen", "rekey", "healthcheck"]),
            ("serve", settingFlags),
            ("rekey", settingFlags),
            ("migrate", ["--database-url", "--log-format", "--log-level"]),
            ("keygen", ["--id"]),
            ("healthcheck", ["--target"]),
        ]
        for (command, words) in expected {
            let result = try await Self.run((command.map { [$0] } ?? []) + ["--help"])
            #expect(result.status == 0, "\(command ?? "token-gateway") --help: \(result.output)")
            #expect(result.output.contains("USAGE: token-gateway \(command ?? "")"))
            for word in words { #expect(result.output.contains(word), "\(command ?? "token-gateway") --help: \(word)") }
        }
    }

    @Test func serveAnswersThenStopsCleanlyOnSIGTERM() async throws {
        let url = try await TestDatabase.make(prefix: "cli")
        let port = try freeLocalPort()
        let listen = "127.0.0.1:\(port)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--listen", listen, "--log-format", "text"]
        process.environment = Self.environment([
            "DATABASE_URL": url, "TOKEN_GATEWAY_ADMIN_TOKEN": String(repeating: "0123456789abcdef", count: 3),
            "TOKEN_GATEWAY_ENCRYPTION_KEYS": Keyring.generateKeyLine(id: "k1"), "TOKEN_GATEWAY_LOG_LEVEL": "debug",
        ])
        let log = Pipe()
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let http = try HTTPClientForTests()
        let up = await eventually(within: 20) { (try? await http.status("http://\(listen)/readyz")) == 200 }
        #expect(up)
        #expect(try await http.status("http://\(listen)/healthz") == 200)
        let byTarget = try await Self.run(["healthcheck", "--target", listen])
        #expect(byTarget.status == 0)
        let byListen = try await Self.run(["healthcheck"], ["TOKEN_GATEWAY_LISTEN": "0.0.0.0:\(port)"])
        #expect(byListen.status == 0)
        kill(process.processIdentifier, SIGTERM)
        let exited = await eventually(within: 15) { !process.isRunning }
        #expect(exited)
        #expect(process.terminationStatus == 0)
        #expect((try? await http.status("http://\(listen)/healthz")) == nil)
        http.shutdown()
        #expect(try await Self.run(["healthcheck", "--target", listen]).status == 1)

        // The settings given are the ones used: text lines, and debug lines such as each request's.
        let output = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = output.split(separator: "\n")
        #expect(lines.contains { $0.contains(" INFO token-gateway serving listen=\(listen)") }, "\(output)")
        #expect(lines.contains { $0.contains(" DEBUG request ") && $0.contains("route=/healthz") }, "\(output)")
        #expect(!lines.contains { $0.hasPrefix("{") }, "\(output)")
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
