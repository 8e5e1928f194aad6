import ArgumentParser
import Foundation
import Logging
import Postgres
import TokenGatewayCore

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
    @Option(help: "json or text (default json). [env: TOKEN_GATEWAY_LOG_FORMAT]") var logFormat: String?
    @Option(help: "trace, debug, info, notice, warning, error (default info). [env: TOKEN_GATEWAY_LOG_LEVEL]")
    var logLevel: String?
    @Option(help: "HTTP worker threads (default: cores). [env: TOKEN_GATEWAY_THREADS]") var threads: String?
    @Option(help: "Most PostgreSQL connections (default 10). [env: TOKEN_GATEWAY_DB_POOL_SIZE]") var dbPoolSize: String?
    @Option(help: "Most simultaneous HTTP connections (default 1024). [env: TOKEN_GATEWAY_MAX_CONNECTIONS]")
    var maxConnections: String?
    @Option(help: "Idle keep-alive timeout (default 60). [env: TOKEN_GATEWAY_IDLE_TIMEOUT_SECONDS]")
    var idleTimeoutSeconds: String?
    @Option(help: "Grace for in-flight requests on SIGTERM (default 10). [env: TOKEN_GATEWAY_SHUTDOWN_GRACE_SECONDS]")
    var shutdownGraceSeconds: String?
    @Option(
        help:
            "Salesforce calls one API key may cause per minute per replica (default 120). [env: TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE]"
    )
    var keyUpstreamLimitPerMinute: String?

    /// Flags over environment, keyed by environment variable name.
    func values() -> [String: String] {
        var values = ProcessInfo.processInfo.environment
        let flags: [(String, String?)] = [
            ("DATABASE_URL", databaseURL), ("TOKEN_GATEWAY_ADMIN_TOKEN", adminToken),
            ("TOKEN_GATEWAY_ENCRYPTION_KEYS", encryptionKeys), ("TOKEN_GATEWAY_LISTEN", listen),
            ("TOKEN_GATEWAY_PUBLIC_URL", publicURL), ("TOKEN_GATEWAY_UPSTREAM_ALLOWLIST", upstreamAllowlist),
            ("TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS", upstreamTimeoutSeconds),
            ("TOKEN_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_SECONDS", upstreamConnectTimeoutSeconds),
            ("TOKEN_GATEWAY_MAX_BODY_BYTES", maxBodyBytes),
            ("TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS", forceRefreshGraceSeconds),
            ("TOKEN_GATEWAY_LOG_FORMAT", logFormat), ("TOKEN_GATEWAY_LOG_LEVEL", logLevel),
            ("TOKEN_GATEWAY_THREADS", threads),
            ("TOKEN_GATEWAY_DB_POOL_SIZE", dbPoolSize), ("TOKEN_GATEWAY_MAX_CONNECTIONS", maxConnections),
            ("TOKEN_GATEWAY_IDLE_TIMEOUT_SECONDS", idleTimeoutSeconds),
            ("TOKEN_GATEWAY_SHUTDOWN_GRACE_SECONDS", shutdownGraceSeconds),
            ("TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE", keyUpstreamLimitPerMinute),
        ]
        for (name, value) in flags { if let value { values[name] = value } }
        return values
    }

    /// Validates the settings, or prints the one line naming the bad setting and exits with status 2.
    func load() throws -> GatewayConfiguration {
        do {
            return try GatewayConfiguration.make(values())
        } catch {
            FileHandle.standardError.write(Data("token-gateway: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
    }

    func makeLogger() -> Logger {
        let values = values()
        let json = (values["TOKEN_GATEWAY_LOG_FORMAT"] ?? "json") != "text"
        let level = values["TOKEN_GATEWAY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label, json: json)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "token-gateway")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API (applies pending migrations first).",
        discussion: "Every flag can also be given as the environment variable named in its help. Flags win.")

    @OptionGroup var settings: Settings

    func run() async throws {
        let configuration = try settings.load()
        let logger = settings.makeLogger()
        let gateway: Gateway
        do {
            gateway = try await Gateway.start(configuration: configuration, logger: logger)
        } catch {
            logger.critical("could not start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let signal = await ShutdownSignal.wait()
        logger.info("signal received", metadata: ["signal": "\(signal)"])
        await gateway.shutdown()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations and exit.")
    @Option(help: "PostgreSQL connection URI. [env: DATABASE_URL]") var databaseURL: String?

    func run() async throws {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            FileHandle.standardError.write(Data("token-gateway: configuration error: DATABASE_URL is required\n".utf8))
            throw ExitCode(2)
        }
        let logger = Settings().makeLogger()
        let pool = PostgresPool(configuration: PostgresConfiguration(url: url, poolSize: 2), logger: logger)
        defer { Task { await pool.close() } }
        let applied = try await PostgresMigrator.migrate(
            pool: pool, migrations: GatewaySchema.migrations, logger: logger)
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
        let configuration = try settings.load()
        let logger = settings.makeLogger()
        let pool = PostgresPool(
            configuration: PostgresConfiguration(url: configuration.databaseURL, poolSize: 2), logger: logger)
        _ = try await PostgresMigrator.migrate(pool: pool, migrations: GatewaySchema.migrations, logger: logger)
        let count = try await TokenGatewayCore.Rekey.run(pool: pool, keyring: configuration.keyring)
        await pool.close()
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
