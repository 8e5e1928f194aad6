import Foundation
import Postgres
import TestSupport
import Testing

@Suite("PostgresMigrator")
struct PostgresMigratorTests {
    static let migrations = [
        PostgresMigration(
            version: 2, name: "widgets_color", sql: "ALTER TABLE widgets ADD COLUMN color text NOT NULL DEFAULT 'red'"),
        // Would fail if run twice (no IF NOT EXISTS), and is slow enough for two migrators to overlap.
        PostgresMigration(
            version: 1, name: "widgets",
            sql: "SELECT pg_sleep(0.3); CREATE TABLE widgets (id int PRIMARY KEY); INSERT INTO widgets VALUES (1);"),
    ]

    @Test func migratingTwiceAppliesNothingTheSecondTime() async throws {
        let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
        defer { Task { await pool.close() } }
        #expect(try await PostgresMigrator.currentVersion(pool: pool) == 0)

        let first = try await PostgresMigrator.migrate(pool: pool, migrations: Self.migrations, logger: testLogger)
        #expect(first == [1, 2])
        #expect(try await PostgresMigrator.currentVersion(pool: pool) == 2)
        let second = try await PostgresMigrator.migrate(pool: pool, migrations: Self.migrations, logger: testLogger)
        #expect(second == [])

        let recorded = try await pool.query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        #expect(recorded.rows.map { $0["version"] } == ["1", "2"])
        #expect(recorded.rows.map { $0["name"] } == ["widgets", "widgets_color"])
        #expect(recorded.rows.allSatisfy { $0["applied_at"] != nil })
        #expect(try await pool.query("SELECT color FROM widgets").rows.first?["color"] == "red")
    }

    @Test func twoReplicasMigratingAtOnceApplyEachMigrationOnce() async throws {
        let url = try await SharedPostgres.freshDatabase()
        let first = PostgresPool(configuration: .init(url: url), logger: testLogger)
        let second = PostgresPool(configuration: .init(url: url), logger: testLogger)
        defer {
            Task {
                await first.close()
                await second.close()
            }
        }

        let start = ContinuousClock.now
        async let a = PostgresMigrator.migrate(pool: first, migrations: Self.migrations, logger: testLogger)
        async let b = PostgresMigrator.migrate(pool: second, migrations: Self.migrations, logger: testLogger)
        let (appliedA, appliedB) = try await (a, b)
        print(
            "concurrent migrators finished in \(String(format: "%.3f", seconds(since: start))) s: \(appliedA) / \(appliedB)"
        )
        #expect((appliedA + appliedB).sorted() == [1, 2])
        #expect(appliedA.isEmpty || appliedB.isEmpty)
        #expect(try await first.query("SELECT count(*) AS n FROM widgets").rows.first?["n"] == "1")
        #expect(try await second.query("SELECT count(*) AS n FROM schema_migrations").rows.first?["n"] == "2")
    }

    @Test func failingMigrationIsRolledBackAndNotRecorded() async throws {
        let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
        defer { Task { await pool.close() } }
        let broken = [
            PostgresMigration(version: 1, name: "ok", sql: "CREATE TABLE ok (id int)"),
            PostgresMigration(version: 2, name: "broken", sql: "CREATE TABLE half (id int); SELECT * FROM missing;"),
        ]
        let error = await #expect(throws: PostgresError.self) {
            _ = try await PostgresMigrator.migrate(pool: pool, migrations: broken, logger: testLogger)
        }
        #expect(error?.sqlState == "42P01")
        #expect(try await PostgresMigrator.currentVersion(pool: pool) == 1)
        #expect(try await pool.query("SELECT to_regclass('half') IS NULL AS gone").rows.first?["gone"] == "t")
        // The advisory lock was released: another migrator is not blocked.
        let fixed = [broken[0], PostgresMigration(version: 2, name: "fixed", sql: "CREATE TABLE half (id int)")]
        let applied = try await within(5, "migration after a failure") {
            try await PostgresMigrator.migrate(pool: pool, migrations: fixed, logger: testLogger)
        }
        #expect(applied == [2])
    }
}
