import Codecs
import Logging
import Postgres
import TokenGatewayDomain

/// The gateway's PostgreSQL as the layers above see it: a pool with the schema applied, the store on it, and the
/// listener for other replicas' `NOTIFY` messages. Nothing above this module names a Postgres type.
public final class GatewayDatabase: Sendable {
    /// Typed reads and writes of everything the gateway keeps.
    public let store: GatewayStore
    let pool: PostgresPool
    let url: String

    /// Opens a pool of `poolSize` connections to `url` and applies pending migrations under an advisory lock.
    /// Returns the database and the versions it applied.
    public static func open(
        url: String, poolSize: Int, acquireTimeoutSeconds: Double = 5, keyring: Keyring, logger: Logger
    ) async throws -> (database: GatewayDatabase, applied: [Int]) {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(
                url: url, poolSize: poolSize, acquireTimeoutSeconds: acquireTimeoutSeconds),
            logger: logger)
        do {
            let applied = try await PostgresMigrator.migrate(
                pool: pool, migrations: GatewaySchema.migrations, logger: logger)
            return (GatewayDatabase(pool: pool, url: url, keyring: keyring), applied)
        } catch {
            await pool.close()
            throw error
        }
    }

    /// Applies pending migrations to the database at `url` with a pool of two, then closes it; returns the
    /// versions applied.
    public static func migrate(url: String, logger: Logger) async throws -> [Int] {
        let pool = PostgresPool(configuration: PostgresConfiguration(url: url, poolSize: 2), logger: logger)
        do {
            let applied = try await PostgresMigrator.migrate(
                pool: pool, migrations: GatewaySchema.migrations, logger: logger)
            await pool.close()
            return applied
        } catch {
            await pool.close()
            throw error
        }
    }

    init(pool: PostgresPool, url: String, keyring: Keyring) {
        self.pool = pool
        self.url = url
        self.store = GatewayStore(pool: pool, keyring: keyring)
    }

    /// Connections of the pool in use now (for the pool gauge).
    public var connectionsInUse: Int { pool.inUse }

    /// The schema version the database is at (readiness compares it with `GatewaySchema.latestVersion`).
    public func schemaVersion() async throws -> Int { try await PostgresMigrator.currentVersion(pool: pool) }

    /// A stopped listener on the gateway's channel. `onMessage` gets each notification (nil when unreadable);
    /// `onReconnect` runs after every reconnect but the first, when messages may have been missed.
    public func listener(
        logger: Logger, onMessage: @escaping @Sendable (GatewayNotification?) -> Void,
        onReconnect: @escaping @Sendable () -> Void
    ) -> NotificationListener {
        NotificationListener(
            PostgresListener(
                url: url, channels: [GatewayNotification.channel], logger: logger,
                onNotification: { _, payload in onMessage(GatewayNotification(payload: payload)) },
                onReconnect: onReconnect))
    }

    /// Re-encrypts every stored secret under the keyring's primary key, in one transaction; returns the count.
    public func rekey(keyring: Keyring) async throws -> Int { try await Rekey.run(pool: pool, keyring: keyring) }

    /// Closes every connection of the pool.
    public func close() async { await pool.close() }
}

/// The `LISTEN` connection of one replica: started once, stopped at shutdown.
public final class NotificationListener: Sendable {
    let listener: PostgresListener

    init(_ listener: PostgresListener) { self.listener = listener }

    /// Starts listening (a second call does nothing).
    public func start() { listener.start() }
    /// Stops listening and closes the connection.
    public func stop() { listener.stop() }
    /// Whether the `LISTEN` connection is up now.
    public var isConnected: Bool { listener.isConnected }
}

/// How a database error reads to the layers above the store, which never see a Postgres type.
public enum DatabaseFailure: Sendable, Equatable {
    /// Every pooled connection stayed busy for the acquire timeout: not an outage.
    case busy
    /// The server could not be reached, or the connection broke or was closed.
    case unreachable
    /// The server refused a statement, or answered in a way the driver did not expect.
    case failed

    /// The classification of `error`, or nil when it is not a database error.
    public init?(_ error: any Error) {
        guard let error = error as? PostgresError else { return nil }
        switch error.kind {
        case .poolExhausted: self = .busy
        case .unavailable, .closed: self = .unreachable
        case .server, .protocolViolation: self = .failed
        }
    }
}
