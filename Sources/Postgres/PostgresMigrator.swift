import Logging

/// One schema change: `sql` is a script (several statements allowed, no BEGIN/COMMIT of its own).
public struct PostgresMigration: Sendable {
    /// Ordering key; each version is applied once.
    public var version: Int
    /// A short name, recorded next to the version.
    public var name: String
    /// The script, run inside the migration's transaction.
    public var sql: String

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies schema migrations, safely when several replicas start at once.
public enum PostgresMigrator {
    /// The key of the session advisory lock that serialises migrators (the ASCII of "tgw_migr").
    static let advisoryLockKey: Int64 = 0x7467_775f_6d69_6772

    /// Applies the missing migrations in order, each in its own transaction, all under a session advisory lock
    /// (pg_advisory_lock on a fixed key) so several replicas starting together apply each exactly once.
    /// Records them in table `schema_migrations(version int primary key, name text, applied_at timestamptz)`.
    /// Returns the versions applied now.
    public static func migrate(
        pool: PostgresPool, migrations: [PostgresMigration], logger: Logger
    ) async throws -> [Int] {
        let ordered = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where previous.version == next.version {
            throw PostgresError(kind: .protocolViolation, message: "duplicate migration version \(next.version)")
        }
        return try await pool.withConnection { connection in
            let key = String(advisoryLockKey)
            _ = try await connection.query("SELECT pg_advisory_lock($1::bigint)", [key])
            let applied: [Int]
            do {
                applied = try await applyMissing(ordered, on: connection, logger: logger)
            } catch {
                do {
                    _ = try await connection.query("SELECT pg_advisory_unlock($1::bigint)", [key])
                } catch let unlockError {
                    // The lock dies with the session; the connection was likely lost, which ends it anyway.
                    logger.warning("could not release the migration lock: \(unlockError)")
                }
                throw error
            }
            _ = try await connection.query("SELECT pg_advisory_unlock($1::bigint)", [key])
            return applied
        }
    }

    /// The highest applied version, 0 when none (table missing counts as 0).
    public static func currentVersion(pool: PostgresPool) async throws -> Int {
        do {
            let result = try await pool.query("SELECT coalesce(max(version), 0) AS version FROM schema_migrations")
            return result.rows.first?["version"].flatMap { Int($0) } ?? 0
        } catch let error as PostgresError where error.sqlState == "42P01" {  // undefined_table
            return 0
        }
    }

    private static func applyMissing(
        _ migrations: [PostgresMigration], on connection: PostgresConnection, logger: Logger
    ) async throws -> [Int] {
        try await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version int PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let existing = try await connection.query("SELECT version FROM schema_migrations")
        let done = Set(existing.rows.compactMap { $0["version"].flatMap { Int($0) } })
        var applied: [Int] = []
        for migration in migrations where !done.contains(migration.version) {
            let started = ContinuousClock.now
            try await connection.transaction { connection in
                try await connection.execute(migration.sql)
                _ = try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
                    [String(migration.version), migration.name])
            }
            applied.append(migration.version)
            logger.info(
                "applied migration",
                metadata: [
                    "version": "\(migration.version)", "name": .string(migration.name),
                    "elapsed": "\(ContinuousClock.now - started)",
                ])
        }
        return applied
    }
}
