import Codecs
import Foundation
import HTTPClient
import HTTPServer
import Logging
import Synchronization
import TokenGatewayAPI
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// The running service: PostgreSQL pool and listener, Salesforce client, caches, HTTP server and background work
/// (token lifecycle, webhook deliveries).
final class Gateway: Sendable {
    let configuration: GatewayConfiguration
    let api: GatewayAPI
    let database: GatewayDatabase
    let http: HTTPClient
    let server: HTTPServer
    let listener: NotificationListener
    /// Refresh ahead and keep-alive.
    let lifecycle: TokenLifecycle
    /// Delivers the webhook outbox.
    let webhooks: WebhookDispatcher
    let logger: Logger
    private let background = Mutex<Task<Void, Never>?>(nil)

    /// The bound HTTP port (useful with port 0).
    var port: Int { server.port }

    /// Connects, applies migrations (under an advisory lock), loads the API keys and starts serving.
    static func start(configuration: GatewayConfiguration, logger: Logger) async throws -> Gateway {
        let (database, applied) = try await GatewayDatabase.open(
            url: configuration.databaseURL, poolSize: configuration.databasePoolSize,
            acquireTimeoutSeconds: configuration.databaseAcquireTimeoutSeconds, keyring: configuration.keyring,
            logger: logger)
        if !applied.isEmpty { logger.info("migrations applied", metadata: ["versions": "\(applied)"]) }
        let gateway = try Gateway(configuration: configuration, database: database, logger: logger)
        try await gateway.reloadKeys()
        gateway.listener.start()
        try gateway.server.start()
        gateway.startBackgroundWork()
        gateway.lifecycle.start()
        gateway.webhooks.start()
        logger.info(
            "token-gateway serving",
            metadata: [
                "listen": "\(configuration.listenHost):\(gateway.port)", "threads": "\(configuration.threads)",
                "upstream_allowlist": "\(configuration.upstreamAllowList)",
            ])
        return gateway
    }

    private init(configuration: GatewayConfiguration, database: GatewayDatabase, logger: Logger) throws {
        self.configuration = configuration
        self.database = database
        self.logger = logger
        let metrics = Metrics()
        http = try HTTPClient(
            configuration: HTTPClientConfiguration(
                connectTimeout: .milliseconds(Int(configuration.upstreamConnectTimeoutSeconds * 1000)),
                totalTimeout: .milliseconds(Int(configuration.upstreamTimeoutSeconds * 1000))),
            logger: logger)
        let store = database.store
        let keys = KeyRegistry(adminToken: configuration.adminToken)
        let cache = TokenCache()
        let salesforce = SalesforceTokenEndpoint(http: http, metrics: metrics, logger: logger)
        let tokens = TokenService(
            store: store, cache: cache, salesforce: salesforce, metrics: metrics, logger: logger,
            forceRefreshGraceSeconds: configuration.forceRefreshGraceSeconds,
            keyUpstreamLimitPerMinute: configuration.keyUpstreamLimitPerMinute,
            upstreamTimeoutSeconds: configuration.upstreamTimeoutSeconds,
            upstreamConcurrencyPerClient: configuration.upstreamConcurrencyPerClient)
        lifecycle = TokenLifecycle(
            tokens: tokens, store: store, cache: cache, metrics: metrics, logger: logger,
            refreshAheadSeconds: configuration.refreshAheadSeconds, keepaliveSeconds: configuration.keepaliveSeconds,
            concurrency: configuration.backgroundConcurrency)
        let webhooks = WebhookDispatcher(store: store, http: http, metrics: metrics, logger: logger)
        self.webhooks = webhooks
        api = GatewayAPI(
            configuration: configuration.apiSettings, store: store, keys: keys, cache: cache, tokens: tokens,
            salesforce: salesforce,
            metrics: metrics, logger: logger,
            readiness: {
                do {
                    let version = try await database.schemaVersion()
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
        metrics.gauge("token_gateway_db_pool_in_use") { Double(database.connectionsInUse) }
        let poolSize = Double(configuration.databasePoolSize)
        metrics.gauge("token_gateway_db_pool_size") { poolSize }
        listener = database.listener(
            logger: logger,
            onMessage: { [logger] message in
                guard let message else {
                    logger.warning("unreadable notification ignored")
                    return
                }
                Self.apply(message, tokens: tokens, keys: keys, cache: cache, webhooks: webhooks)
            },
            onReconnect: { [logger] in
                // Notifications may have been missed while disconnected: forget what may be stale.
                cache.removeAll()
                webhooks.wake()
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
                maxBodyBytes: configuration.maxBodyBytes, headerTimeoutSeconds: configuration.headerTimeoutSeconds,
                refusalResponse: GatewayError.refusalResponse),
            handler: api.makeRouter(), logger: logger)
    }

    /// Applies a change announced by another replica (or by this one's own database writes).
    static func apply(
        _ message: GatewayNotification, tokens: TokenService, keys: KeyRegistry, cache: TokenCache,
        webhooks: WebhookDispatcher
    ) {
        switch message {
        case .keyDeleted(let id):
            keys.remove(id: id)
        case .tenantDeleted(let tenant):
            keys.removeTenant(tenant)
            cache.invalidate(tenant: tenant)
        case .tokensStale(let tenant, let client, let connection):
            cache.invalidate(tenant: tenant, client: client, connection: connection ?? "")
        case .leaseEnded(let key, let origin, let forced):
            // Another replica's new token, or its failure: requests waiting here re-read the row.
            tokens.waiters.wake(key)
            if forced && origin != tokens.origin {
                cache.invalidate(tenant: key.tenant, client: key.client, connection: key.connection)
            }
        case .webhookPending:
            webhooks.wake()
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
                        let count = try await api.store.reauthorizationRequiredCount()
                        reauthorization.withLock { $0 = Double(count) }
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
    func shutdown() async {
        logger.info("shutting down")
        await server.shutdown(gracePeriod: .milliseconds(Int(configuration.shutdownGraceSeconds * 1000)))
        background.withLock { $0?.cancel() }
        let grace = Duration.milliseconds(Int(configuration.shutdownGraceSeconds * 1000))
        async let renewals: Void = lifecycle.stop(grace: grace)
        async let deliveries: Void = webhooks.stop(grace: grace)
        _ = await (renewals, deliveries)
        await flushUsage()
        listener.stop()
        http.shutdown()
        await database.close()
        logger.info("stopped")
    }
}
