import Foundation
import HTTPClient
import HTTPServer
import Logging
import Postgres
import Synchronization

/// The running service: PostgreSQL pool and listener, Salesforce client, caches, HTTP server and background work.
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    public let api: GatewayAPI
    let pool: PostgresPool
    let http: HTTPClient
    let server: HTTPServer
    let listener: PostgresListener
    let logger: Logger
    private let background = Mutex<Task<Void, Never>?>(nil)

    /// The bound HTTP port (useful with port 0).
    public var port: Int { server.port }

    /// Connects, applies migrations (under an advisory lock), loads the API keys and starts serving.
    public static func start(configuration: GatewayConfiguration, logger: Logger) async throws -> Gateway {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(
                url: configuration.databaseURL, poolSize: configuration.databasePoolSize),
            logger: logger)
        let applied = try await PostgresMigrator.migrate(
            pool: pool, migrations: GatewaySchema.migrations, logger: logger)
        if !applied.isEmpty { logger.info("migrations applied", metadata: ["versions": "\(applied)"]) }
        let gateway = try Gateway(configuration: configuration, pool: pool, logger: logger)
        try await gateway.reloadKeys()
        gateway.listener.start()
        try gateway.server.start()
        gateway.startBackgroundWork()
        logger.info(
            "token-gateway serving",
            metadata: [
                "listen": "\(configuration.listenHost):\(gateway.port)", "threads": "\(configuration.threads)",
                "upstream_allowlist": "\(configuration.upstreamAllowList)",
            ])
        return gateway
    }

    private init(configuration: GatewayConfiguration, pool: PostgresPool, logger: Logger) throws {
        self.configuration = configuration
        self.pool = pool
        self.logger = logger
        let metrics = Metrics()
        http = try HTTPClient(
            configuration: HTTPClientConfiguration(
                connectTimeout: .milliseconds(Int(configuration.upstreamConnectTimeoutSeconds * 1000)),
                totalTimeout: .milliseconds(Int(configuration.upstreamTimeoutSeconds * 1000))),
            logger: logger)
        let store = GatewayStore(pool: pool, keyring: configuration.keyring)
        let keys = KeyRegistry(adminToken: configuration.adminToken)
        let cache = TokenCache()
        let salesforce = SalesforceTokenEndpoint(http: http, metrics: metrics, logger: logger)
        let tokens = TokenService(
            store: store, cache: cache, salesforce: salesforce, metrics: metrics, logger: logger,
            forceRefreshGraceSeconds: configuration.forceRefreshGraceSeconds,
            keyUpstreamLimitPerMinute: configuration.keyUpstreamLimitPerMinute)
        api = GatewayAPI(
            configuration: configuration, store: store, keys: keys, cache: cache, tokens: tokens,
            salesforce: salesforce,
            metrics: metrics, logger: logger,
            readiness: {
                do {
                    let version = try await PostgresMigrator.currentVersion(pool: pool)
                    guard version >= GatewaySchema.latestVersion else {
                        return (
                            false,
                            "database schema is at version \(version), this binary needs \(GatewaySchema.latestVersion)"
                        )
                    }
                    return (true, nil)
                } catch {
                    return (false, "database unreachable")
                }
            })
        metrics.gauge("token_gateway_db_pool_in_use") { Double(pool.inUse) }
        let origin = tokens.origin
        listener = PostgresListener(
            url: configuration.databaseURL, channels: ["tgw_keys", "tgw_tokens"], logger: logger,
            onNotification: { channel, payload in
                Self.apply(notification: payload, channel: channel, origin: origin, keys: keys, cache: cache)
            },
            onReconnect: { [logger] in
                // Notifications may have been missed while disconnected: forget what may be stale.
                cache.removeAll()
                Task {
                    do { keys.replaceAll(try await store.keyHashes()) } catch {
                        logger.warning("key reload after reconnect failed", metadata: ["error": "\(error)"])
                    }
                }
            })
        server = HTTPServer(
            configuration: HTTPServerConfiguration(
                host: configuration.listenHost, port: configuration.listenPort, threads: configuration.threads,
                maxConnections: configuration.maxConnections,
                connectionTimeoutSeconds: configuration.idleTimeoutSeconds,
                maxBodyBytes: configuration.maxBodyBytes, headerTimeoutSeconds: configuration.headerTimeoutSeconds),
            handler: api.makeRouter(), logger: logger)
    }

    /// Applies a change announced by another replica (or by this one's own database writes).
    static func apply(
        notification payload: String, channel: String, origin: String, keys: KeyRegistry, cache: TokenCache
    ) {
        switch channel {
        case "tgw_keys":
            if payload.hasPrefix("key:") { keys.remove(id: String(payload.dropFirst(4))) }
            if payload.hasPrefix("tenant:") {
                keys.removeTenant(String(payload.dropFirst(7)))
                cache.invalidate(tenant: String(payload.dropFirst(7)))
            }
        case "tgw_tokens":
            let parts = payload.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] != origin else { return }
            let names = parts[1].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard names.count == 3, !names[0].isEmpty else { return }
            cache.invalidate(tenant: names[0], client: names[1], connection: names[2])
        default:
            break
        }
    }

    func reloadKeys() async throws {
        api.keys.replaceAll(try await api.store.keyHashes())
    }

    /// Every 5 s: write key usage; every 60 s: reload keys and count connections needing a person.
    func startBackgroundWork() {
        let task = Task { [self] in
            var ticks = 0
            let reauthorization = Mutex(0.0)
            api.metrics.gauge("token_gateway_connections_reauthorization_required") { reauthorization.withLock { $0 } }
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                ticks += 1
                await flushUsage()
                if ticks % 12 == 1 {
                    do {
                        try await reloadKeys()
                        let count = try await pool.query(
                            "SELECT count(*) AS n FROM connections WHERE status = 'reauthorization_required'")
                        reauthorization.withLock { $0 = Double(count.rows.first?["n"] ?? "0") ?? 0 }
                    } catch {
                        logger.debug("periodic refresh skipped", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        background.withLock { $0 = task }
    }

    func flushUsage() async {
        let usage = api.keys.drainUsage()
        do {
            try await api.store.recordKeyUse(lastUsed: usage.lastUsed, tokensIssued: usage.issued)
        } catch {
            logger.warning("could not record key use", metadata: ["error": "\(error)"])
        }
    }

    /// Stops accepting, lets in-flight requests finish within the grace period, writes pending key usage, closes.
    public func shutdown() async {
        logger.info("shutting down")
        await server.shutdown(gracePeriod: .milliseconds(Int(configuration.shutdownGraceSeconds * 1000)))
        background.withLock { $0?.cancel() }
        await flushUsage()
        listener.stop()
        http.shutdown()
        await pool.close()
        logger.info("stopped")
    }
}
