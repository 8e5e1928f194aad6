import Foundation
import Logging
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("PostgresPool against a real PostgreSQL")
struct PostgresPoolTests {
    @Test func parametersBindNullUnicodeAndInjectionLookingStringsAsPlainValues() async throws {
        let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("CREATE TABLE notes (id int PRIMARY KEY, body text, extra text)")

        let injection = "x'); DROP TABLE notes; --"
        let unicode = "Grüße 東京 🚀 \"quoted\" \\ backslash"
        let inserted = try await pool.query(
            "INSERT INTO notes (id, body, extra) VALUES ($1::int, $2, $3), ($4::int, $5, $6)",
            ["1", injection, nil, "2", unicode, ""])
        #expect(inserted.affectedRows == 2)

        let result = try await pool.query("SELECT id, body, extra FROM notes ORDER BY id")
        #expect(result.columns == ["id", "body", "extra"])
        #expect(result.rows.count == 2)
        #expect(result.rows[0]["body"] == injection)
        #expect(result.rows[0]["extra"] == nil)
        #expect(result.rows[1]["body"] == unicode)
        #expect(result.rows[1]["extra"] == "")
        #expect(result.rows[1][0] == "2")
        #expect(result.rows[1][7] == nil)
        #expect(result.rows[1]["missing"] == nil)

        let matched = try await pool.query("SELECT count(*) AS n FROM notes WHERE body = $1", [injection])
        #expect(matched.rows.first?["n"] == "1")
        let noMatch = try await pool.query("SELECT count(*) AS n FROM notes WHERE body = $1", ["' OR '1'='1"])
        #expect(noMatch.rows.first?["n"] == "0")
        let isNull = try await pool.query("SELECT $1::text IS NULL AS null_bound", [nil])
        #expect(isNull.rows.first?["null_bound"] == "t")
        let updated = try await pool.query("UPDATE notes SET extra = 'seen'")
        #expect(updated.affectedRows == 2)
        let created = try await pool.query("CREATE TEMP TABLE nothing (x int)")
        #expect(created.affectedRows == 0)
    }

    @Test func executeRunsMultiStatementScripts() async throws {
        let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
        defer { Task { await pool.close() } }
        try await pool.withConnection { connection in
            try await connection.execute(
                "CREATE TABLE a (x int); INSERT INTO a VALUES (1), (2); CREATE TABLE IF NOT EXISTS a (x int);")
        }
        let sum = try await pool.query("SELECT sum(x) AS s FROM a")
        #expect(sum.rows.first?["s"] == "3")
    }

    @Test func transactionCommitsOnSuccessAndRollsBackWhenTheBodyThrows() async throws {
        let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("CREATE TABLE accounts (name text PRIMARY KEY, balance int NOT NULL)")

        let committed = try await pool.transaction { connection in
            _ = try await connection.query("INSERT INTO accounts VALUES ($1, $2::int)", ["alice", "10"])
            _ = try await connection.query("INSERT INTO accounts VALUES ($1, $2::int)", ["bob", "20"])
            return "done"
        }
        #expect(committed == "done")

        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await pool.transaction { connection in
                _ = try await connection.query("UPDATE accounts SET balance = 0")
                _ = try await connection.query("INSERT INTO accounts VALUES ($1, $2::int)", ["carol", "5"])
                throw Abort()
            }
        }
        let rows = try await pool.query("SELECT name, balance FROM accounts ORDER BY name")
        #expect(rows.rows.map { $0["name"] } == ["alice", "bob"])
        #expect(rows.rows.map { $0["balance"] } == ["10", "20"])
        #expect(pool.inUse == 0)
    }

    @Test func commitOfAnAbortedTransactionFailsInsteadOfSilentlyRollingBack() async throws {
        let pool = PostgresPool(
            configuration: .init(url: try await SharedPostgres.freshDatabase(), poolSize: 1), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("CREATE TABLE t (id int PRIMARY KEY)")
        let error = await #expect(throws: PostgresError.self) {
            try await pool.transaction { connection in
                _ = try await connection.query("INSERT INTO t VALUES (1)")
                // The body swallows a failing statement; the transaction is aborted nonetheless.
                _ = try? await connection.query("INSERT INTO t VALUES (1)")
                return 1
            }
        }
        #expect(error?.sqlState == "25P02")
        let count = try await pool.query("SELECT count(*) AS n FROM t")
        #expect(count.rows.first?["n"] == "0")
    }

    @Test func transactionLeftOpenByABorrowerIsRolledBackOnReturn() async throws {
        let pool = PostgresPool(
            configuration: .init(url: try await SharedPostgres.freshDatabase(), poolSize: 1), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("CREATE TABLE t (id int)")
        try await pool.withConnection { connection in
            _ = try await connection.query("BEGIN")
            _ = try await connection.query("INSERT INTO t VALUES (1)")
        }
        // Same (only) connection: inside the abandoned transaction it would see its own uncommitted row.
        let state = try await pool.query("SELECT count(*) AS n FROM t")
        #expect(state.rows.first?["n"] == "0")
        // And a new transaction on it commits normally.
        try await pool.transaction { connection in _ = try await connection.query("INSERT INTO t VALUES (2)") }
        #expect(try await pool.query("SELECT count(*) AS n FROM t").rows.first?["n"] == "1")
    }

    @Test func uniqueViolationCarriesSQLStateAndHidesTheValues() async throws {
        let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("CREATE TABLE clients (client_id text PRIMARY KEY)")
        let secret = "client-secret-value-42"
        _ = try await pool.query("INSERT INTO clients VALUES ($1)", [secret])
        let error = await #expect(throws: PostgresError.self) {
            _ = try await pool.query("INSERT INTO clients VALUES ($1)", [secret])
        }
        #expect(error?.kind == .server)
        #expect(error?.sqlState == "23505")
        #expect(error?.isUniqueViolation == true)
        #expect(error.map { !"\($0)".contains(secret) } == true)

        // The server echoes bad input in its primary message; the layer redacts it.
        let badInput = await #expect(throws: PostgresError.self) {
            _ = try await pool.query("SELECT $1::int", ["not-a-number-\(secret)"])
        }
        #expect(badInput?.sqlState == "22P02")
        #expect(badInput.map { !$0.description.contains(secret) && !$0.message.contains("not-a-number") } == true)
        #expect(badInput?.message.contains("<redacted>") == true)

        let syntax = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELEC 1") }
        #expect(syntax?.sqlState == "42601")
        #expect(syntax?.isUniqueViolation == false)
    }

    @Test func connectionErrorsAreUnavailableFastAndNeverShowThePassword() async throws {
        let port = try freeLocalPort()
        let password = "hunter2-very-secret"
        let pool = PostgresPool(
            configuration: .init(url: "postgresql://postgres:\(password)@127.0.0.1:\(port)/postgres?sslmode=disable"),
            logger: testLogger)
        defer { Task { await pool.close() } }
        let start = ContinuousClock.now
        let error = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELECT 1") }
        #expect(seconds(since: start) < 2)
        #expect(error?.kind == .unavailable)
        #expect(error.map { !$0.description.contains(password) } == true)
        #expect(pool.inUse == 0)
    }

    @Test func poolNeverRunsMoreThanItsSizeAtOnce() async throws {
        let application = "pool_bound_\(UInt32.random(in: 0...UInt32.max))"
        let url = try await SharedPostgres.freshDatabase(applicationName: application)
        let pool = PostgresPool(configuration: .init(url: url, poolSize: 2), logger: testLogger)
        defer { Task { await pool.close() } }

        let inFlight = Counter()
        let maxInFlight = Counter()
        let maxInUse = Counter()
        let sampling = Flag(true)
        let sampler = Task {
            while sampling.value {
                maxInUse.raise(to: pool.inUse)
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        let start = ContinuousClock.now
        try await within(10, "10 queries on a pool of 2") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            maxInFlight.raise(to: inFlight.increment())
                            _ = try await connection.query("SELECT pg_sleep(0.2)")
                            inFlight.decrement()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let elapsed = seconds(since: start)
        sampling.set(false)
        await sampler.value
        let backends = try await SharedPostgres.psql(
            url: url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '\(application)' AND pid <> pg_backend_pid()"
        )
        print("pool bound: 10 x pg_sleep(0.2) on 2 connections took \(String(format: "%.3f", elapsed)) s")
        #expect(elapsed >= 0.95)
        #expect(elapsed < 3)
        #expect(maxInFlight.value == 2)
        #expect(maxInUse.value <= 2)
        #expect(backends == "2")
        #expect(pool.inUse == 0)
    }

    @Test func waitingLongerThanTheAcquireTimeoutFailsWithPoolExhausted() async throws {
        let pool = PostgresPool(
            configuration: .init(
                url: try await SharedPostgres.freshDatabase(), poolSize: 1, acquireTimeoutSeconds: 0.3),
            logger: testLogger)
        defer { Task { await pool.close() } }
        let holder = Task { try await pool.query("SELECT pg_sleep(1)") }
        #expect(await eventually(within: 5) { pool.inUse == 1 })
        let start = ContinuousClock.now
        let error = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELECT 1") }
        let waited = seconds(since: start)
        print("acquire timeout: gave up after \(String(format: "%.3f", waited)) s (limit 0.3 s)")
        #expect(error?.kind == .poolExhausted)
        #expect(waited >= 0.29 && waited < 1)
        _ = try await within(5, "the holder") { try await holder.value }
        #expect(try await pool.query("SELECT 1 AS one").rows.first?["one"] == "1")
    }

    @Test func slowQueriesDoNotBlockTheCooperativePool() async throws {
        let pool = PostgresPool(
            configuration: .init(url: try await SharedPostgres.freshDatabase(), poolSize: 4), logger: testLogger)
        defer { Task { await pool.close() } }
        let ticks = Recorder<ContinuousClock.Instant>()
        let ticking = Flag(true)
        let ticker = Task {
            while ticking.value {
                ticks.append(.now)
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        let start = ContinuousClock.now
        try await within(10, "4 slow queries") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { _ = try await pool.query("SELECT pg_sleep(0.5)") } }
                try await group.waitForAll()
            }
        }
        let elapsed = seconds(since: start)
        ticking.set(false)
        await ticker.value
        let during = ticks.all.filter { $0 >= start }
        let gaps = zip(during, during.dropFirst()).map { toSeconds($0.1 - $0.0) }
        let maxGap = gaps.max() ?? .infinity
        print(
            "cooperative pool: 4 x pg_sleep(0.5) took \(String(format: "%.3f", elapsed)) s; ticker ticked"
                + " \(during.count) times, largest gap \(String(format: "%.3f", maxGap)) s")
        #expect(elapsed < 1.5)  // they ran side by side
        #expect(during.count >= 20)
        #expect(maxGap < 0.25)
    }

    @Test func closedPoolFailsWithClosed() async throws {
        let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
        #expect(try await pool.query("SELECT 1 AS one").rows.first?["one"] == "1")
        await pool.close()
        let error = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELECT 1") }
        #expect(error?.kind == .closed)
    }
}

@Test func serverNoticesGoToTheLoggerNotToStderr() async throws {
    let capture = LogCapture()
    let logger = capture.logger(label: "notices")
    let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: logger)
    defer { Task { await pool.close() } }
    _ = try await pool.query("CREATE TABLE IF NOT EXISTS t (id int)")
    _ = try await pool.query("CREATE TABLE IF NOT EXISTS t (id int)")  // NOTICE: relation "t" already exists
    let notices = capture.records.filter { $0.message == "postgres notice" }
    #expect(notices.count == 1)
    #expect(notices.first?.level == .debug)
    #expect(notices.first?.metadata["sqlstate"] == "42P07")
    #expect(notices.first?.metadata["severity"] == "NOTICE")
}
