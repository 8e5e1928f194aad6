import ArgumentParser
import Codecs
import Foundation
import Logging
import Signals
import TokenGatewayAPI
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

@main
struct TokenGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-gateway",
        abstract: "Hands internal services valid Salesforce access tokens.",
        subcommands: [Serve.self, Migrate.self, Keygen.self, Rekey.self, Healthcheck.self],
        defaultSubcommand: Serve.self)
}

/// Settings shared by the commands that touch the database; each flag falls back to its environment variable.
struct Settings: ParsableArguments {
    @Option(help: "PostgreSQL connection URI. [env: DATABASE_URL]") var databaseURL: String?
    @Option(help: "Admin API bearer token: 32+ characters, 12+ distinct. [env: TOKEN_GATEWAY_ADMIN_TOKEN]")
    var adminToken: String?
    @Option(help: "Comma-separated keyid:base64-of-32-bytes; the first encrypts. [env: TOKEN_GATEWAY_ENCRYPTION_KEYS]")
    var encryptionKeys: String?
    @Option(help: "host:port to listen on (default 0.0.0.0:8080). [env: TOKEN_GATEWAY_LISTEN]") var listen: String?
    @Option(help: "External base URL; authorize links redirect to <url>/callback. [env: TOKEN_GATEWAY_PUBLIC_URL]")
    var publicURL: String?
    @Option(
        help:
            "Comma-separated scheme://host[:port] patterns for login_url (default: Salesforce's https domains). [env: TOKEN_GATEWAY_UPSTREAM_ALLOWLIST]"
    )
    var upstreamAllowlist: String?
    @Option(
        help:
            "Comma-separated scheme://host[:port] patterns for webhook URLs (default: any https URL on a DNS name). [env: TOKEN_GATEWAY_WEBHOOK_ALLOWLIST]"
    )
    var webhookAllowlist: String?
    @Option(
        help: "Whole-call timeout of Salesforce requests (default 15). [env: TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS]")
    var upstreamTimeoutSeconds: String?
    @Option(
        help:
            "Connect timeout of Salesforce requests (default 5). [env: TOKEN_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS]")
    var upstreamConnectTimeoutSeconds: String?
    @Option(help: "Largest request body (default 65536). [env: TOKEN_GATEWAY_MAX_BODY_BYTES]") var maxBodyBytes: String?
    @Option(
        help:
            "force_refresh returns a token this fresh instead of calling Salesforce (default 5). [env: TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS]"
    )
    var forceRefreshGraceSeconds: String?
    @OptionGroup var logging: LogOptions
    @Option(help: "HTTP worker threads (default: cores). [env: TOKEN_GATEWAY_THREADS]") var threads: String?
    @Option(help: "Most PostgreSQL connections (default 10). [env: TOKEN_GATEWAY_DB_POOL_SIZE]") var dbPoolSize: String?
    @Option(
        help:
            "Most open HTTP connections; past it the longest idle are closed (default 10000). [env: TOKEN_GATEWAY_MAX_CONNECTIONS]"
    )
    var maxConnections: String?
    @Option(help: "Idle keep-alive timeout (default 60). [env: TOKEN_GATEWAY_IDLE_TIMEOUT_SECONDS]")
    var idleTimeoutSeconds: String?
    @Option(
        help: "Time for a request line and headers (default 10). [env: TOKEN_GATEWAY_HEADER_TIMEOUT_SECONDS]")
    var headerTimeoutSeconds: String?
    @Option(help: "Grace for in-flight requests on SIGTERM (default 10). [env: TOKEN_GATEWAY_SHUTDOWN_GRACE_SECONDS]")
    var shutdownGraceSeconds: String?
    @Option(
        help:
            "Salesforce calls one API key may cause per minute per replica (default 120). [env: TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE]"
    )
    var keyUpstreamLimitPerMinute: String?
    @Option(
        help:
            "Most concurrent Salesforce calls per client per replica (default 8). [env: TOKEN_GATEWAY_UPSTREAM_CONCURRENCY_PER_CLIENT]"
    )
    var upstreamConcurrencyPerClient: String?
    @Option(
        help:
            "Longest wait for a free database connection (default 2). [env: TOKEN_GATEWAY_DB_ACQUIRE_TIMEOUT_SECONDS]")
    var dbAcquireTimeoutSeconds: String?
    @Option(
        help:
            "Renew tokens in use this long before callers' min_ttl_seconds (default 30). [env: TOKEN_GATEWAY_REFRESH_AHEAD_SECONDS]"
    )
    var refreshAheadSeconds: String?
    @Option(
        help:
            "Refresh connections whose refresh token went unused this long (default 86400, at least 10). [env: TOKEN_GATEWAY_KEEPALIVE_SECONDS]"
    )
    var keepaliveSeconds: String?
    @Option(
        help: "Most background refreshes at once per replica (default 4). [env: TOKEN_GATEWAY_BACKGROUND_CONCURRENCY]")
    var backgroundConcurrency: String?

    /// Flags over environment, keyed by environment variable name.
    func values() -> [String: String] {
        let flags: [(String, String?)] = [
            ("DATABASE_URL", databaseURL), ("TOKEN_GATEWAY_ADMIN_TOKEN", adminToken),
            ("TOKEN_GATEWAY_ENCRYPTION_KEYS", encryptionKeys), ("TOKEN_GATEWAY_LISTEN", listen),
            ("TOKEN_GATEWAY_PUBLIC_URL", publicURL), ("TOKEN_GATEWAY_UPSTREAM_ALLOWLIST", upstreamAllowlist),
            ("TOKEN_GATEWAY_WEBHOOK_ALLOWLIST", webhookAllowlist),
            ("TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS", upstreamTimeoutSeconds),
            ("TOKEN_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS", upstreamConnectTimeoutSeconds),
            ("TOKEN_GATEWAY_MAX_BODY_BYTES", maxBodyBytes),
            ("TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS", forceRefreshGraceSeconds),
            ("TOKEN_GATEWAY_THREADS", threads),
            ("TOKEN_GATEWAY_DB_POOL_SIZE", dbPoolSize), ("TOKEN_GATEWAY_MAX_CONNECTIONS", maxConnections),
            ("TOKEN_GATEWAY_IDLE_TIMEOUT_SECONDS", idleTimeoutSeconds),
            ("TOKEN_GATEWAY_UPSTREAM_CONCURRENCY_PER_CLIENT", upstreamConcurrencyPerClient),
            ("TOKEN_GATEWAY_DB_ACQUIRE_TIMEOUT_SECONDS", dbAcquireTimeoutSeconds),
            ("TOKEN_GATEWAY_REFRESH_AHEAD_SECONDS", refreshAheadSeconds),
            ("TOKEN_GATEWAY_KEEPALIVE_SECONDS", keepaliveSeconds),
            ("TOKEN_GATEWAY_BACKGROUND_CONCURRENCY", backgroundConcurrency),
            ("TOKEN_GATEWAY_HEADER_TIMEOUT_SECONDS", headerTimeoutSeconds),
            ("TOKEN_GATEWAY_SHUTDOWN_GRACE_SECONDS", shutdownGraceSeconds),
            ("TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE", keyUpstreamLimitPerMinute),
        ]
        return environment(overriddenBy: flags + logging.flags)
    }

    /// Validates the settings, or prints the one line naming the bad setting and exits with status 2.
    func load() throws -> GatewayConfiguration {
        try validated { () throws(ConfigurationError) in try GatewayConfiguration.make(values()) }
    }

    /// `load()`, then the process's logging set up as the settings say.
    func loadAndLog() throws -> (GatewayConfiguration, Logger) {
        let configuration = try load()
        return (configuration, bootstrapLogging(configuration.log))
    }
}

/// The log settings, shared by every command that logs.
struct LogOptions: ParsableArguments {
    @Option(help: "json or text (default json). [env: TOKEN_GATEWAY_LOG_FORMAT]") var logFormat: String?
    @Option(
        help: "trace, debug, info, notice, warning, error, critical (default info). [env: TOKEN_GATEWAY_LOG_LEVEL]")
    var logLevel: String?

    var flags: [(String, String?)] {
        [("TOKEN_GATEWAY_LOG_FORMAT", logFormat), ("TOKEN_GATEWAY_LOG_LEVEL", logLevel)]
    }
}

/// The process environment with the given flags (keyed by environment variable name) put over it.
func environment(overriddenBy flags: [(String, String?)]) -> [String: String] {
    var values = ProcessInfo.processInfo.environment
    for (name, value) in flags { if let value { values[name] = value } }
    return values
}

/// Runs a validation; on failure prints the one line naming the bad setting and exits with status 2.
func validated<T>(_ body: () throws(ConfigurationError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        FileHandle.standardError.write(Data("token-gateway: \(error.description)\n".utf8))
        throw ExitCode(2)
    }
}

/// Sends every log line through the project's handler, as the validated settings say; call once per process.
func bootstrapLogging(_ settings: GatewayConfiguration.LogSettings) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = JSONLogHandler(label: label, json: settings.format == .json)
        handler.logLevel = settings.level
        return handler
    }
    return Logger(label: "token-gateway")
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API (applies pending migrations first).",
        discussion: "Every flag can also be given as the environment variable named in its help. Flags win.")

    @OptionGroup var settings: Settings

    func run() async throws {
        let (configuration, logger) = try settings.loadAndLog()
        let gateway: Gateway
        do {
            gateway = try await Gateway.start(configuration: configuration, logger: logger)
        } catch {
            logger.critical("could not start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let signal = await TerminationSignal.wait()
        logger.info("signal received", metadata: ["signal": "\(signal)"])
        await gateway.shutdown()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")
    @Option(help: "PostgreSQL connection URI. [env: DATABASE_URL]") var databaseURL: String?
    @OptionGroup var logging: LogOptions

    func run() async throws {
        let values = environment(overriddenBy: [("DATABASE_URL", databaseURL)] + logging.flags)
        let (url, log) = try validated { () throws(ConfigurationError) in
            (try GatewayConfiguration.databaseURL(values), try GatewayConfiguration.LogSettings.make(values))
        }
        let logger = bootstrapLogging(log)
        let applied: [Int]
        do {
            applied = try await GatewayDatabase.migrate(url: url, logger: logger)
        } catch {
            logger.critical("migrations failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        logger.info(
            "migrations done",
            metadata: [
                "applied": "\(applied)", "version": "\(GatewaySchema.latestVersion)",
            ])
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a fresh encryption key (keyid:base64-of-32-bytes) for TOKEN_GATEWAY_ENCRYPTION_KEYS.")
    @Option(help: "The key id (default: k<yyyymmdd>).") var id: String?

    func run() throws {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let line = Keyring.generateKeyLine(id: id ?? "k" + formatter.string(from: Date())) + "\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}

struct Rekey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Re-encrypt every stored secret under the first key of TOKEN_GATEWAY_ENCRYPTION_KEYS, in one transaction.")
    @OptionGroup var settings: Settings

    func run() async throws {
        let (configuration, logger) = try settings.loadAndLog()
        let count: Int
        do {
            let (database, _) = try await GatewayDatabase.open(
                url: configuration.databaseURL, poolSize: 2, keyring: configuration.keyring, logger: logger)
            do {
                count = try await database.rekey(keyring: configuration.keyring)
                await database.close()
            } catch {
                await database.close()
                throw error
            }
        } catch {
            logger.critical("rekey failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        logger.info("rekey done", metadata: ["resealed": "\(count)", "key": "\(configuration.keyring.primary.id)"])
    }
}

struct Healthcheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exit 0 when GET /healthz of the local gateway answers 200 (for container health checks).")
    @Option(help: "host:port of the gateway (default: TOKEN_GATEWAY_LISTEN's port on 127.0.0.1).") var target: String?

    func run() async throws {
        let listen = ProcessInfo.processInfo.environment["TOKEN_GATEWAY_LISTEN"] ?? "0.0.0.0:8080"
        let port = listen.split(separator: ":").last.map(String.init) ?? "8080"
        let ok = await HealthProbe.check(url: "http://\(target ?? "127.0.0.1:\(port)")/healthz")
        if !ok { throw ExitCode(1) }
    }
}
