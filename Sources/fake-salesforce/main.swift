import ArgumentParser
import FakeSalesforce
import Foundation
import Logging
import Signals

/// `fake-salesforce`: serves a fake Salesforce org until SIGTERM or SIGINT.
struct FakeSalesforceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-salesforce",
        abstract: "A fake of Salesforce's OAuth endpoints for tests, the demo and the benchmarks.",
        discussion: """
            Prints one line, `listening http://HOST:PORT`, then serves until SIGTERM or SIGINT.
            Control endpoints: POST /__fake/apps, /__fake/users, /__fake/codes, /__fake/faults,
            /__fake/authorize-user, /__fake/revoke-all; GET /__fake/stats. An app (in POST /__fake/apps or the
            --config file) may set session_timeout_seconds (default 7200) and refresh_token_unused_expiry_seconds;
            POST /__fake/faults with "endpoint": "introspect" queues faults of the introspection endpoint.
            """)

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "TCP port; 0 picks a free one.")
    var port: Int = 0

    @Option(help: "JSON file preloading the org: {\"apps\": [...], \"users\": [...], \"authorize_user\": \"...\"}.")
    var config: String?

    @Option(help: "Log level (trace, debug, info, notice, warning, error, critical); logs go to stderr.")
    var logLevel: String = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        try await serve()
    }

    /// Starts the fake, prints its URL, and serves until SIGTERM or SIGINT.
    func serve() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "fake-salesforce")
        var preload: FakeSalesforceConfiguration?
        if let config {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: config)))
            preload = try FakeSalesforceConfiguration(json: bytes)
        }
        let fake = try FakeSalesforce.start(host: host, port: port, logger: logger)
        preload?.apply(to: fake.core)
        // The one line on stdout that scripts wait for.
        FileHandle.standardOutput.write(Data("listening \(fake.baseURL)\n".utf8))
        let signal = await TerminationSignal.wait()
        logger.info("stopping", metadata: ["signal": "\(signal)"])
        await fake.shutdown()
    }
}

// Parsed and served explicitly: top-level `await Command.main()` resolves to ParsableCommand's synchronous overload.
do {
    let command = try FakeSalesforceCommand.parse()
    try await command.serve()
} catch {
    FakeSalesforceCommand.exit(withError: error)
}
