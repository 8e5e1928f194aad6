import Foundation
import Postgres
import TestSupport
import Testing

/// Tests that stop and start the server, each on a private cluster.
@Suite("PostgresPool across server restarts")
struct PostgresRecoveryTests {
    @Test func poolFailsFastDuringAnOutageAndRecoversAfterwards() async throws {
        let cluster = try await startPrivateCluster()
        defer { cluster.destroy() }
        let pool = PostgresPool(configuration: .init(url: cluster.url, poolSize: 2), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("CREATE TABLE t (id int)")

        // Restart while the connection is idle: the next statement notices and reconnects before sending.
        try await onThread {
            try cluster.stopServer()
            try cluster.startServer()
        }
        let afterRestart = try await within(5, "query after a restart") {
            try await pool.query("INSERT INTO t VALUES ($1::int)", ["1"])
        }
        #expect(afterRestart.affectedRows == 1)

        // Outage: fail fast with .unavailable.
        try await onThread { try cluster.stopServer() }
        for attempt in 1...2 {
            let start = ContinuousClock.now
            let outcome = try await within(5, "query during the outage") {
                await Result { try await pool.query("SELECT 1") }
            }
            let elapsed = seconds(since: start)
            print("outage: query \(attempt) failed after \(String(format: "%.3f", elapsed)) s")
            #expect(elapsed < 2)
            #expect(throws: PostgresError.self) { try outcome.get() }
            if case .failure(let error as PostgresError) = outcome { #expect(error.kind == .unavailable) }
        }
        #expect(pool.inUse == 0)

        // Recovery: the next request succeeds.
        try await onThread { try cluster.startServer() }
        let start = ContinuousClock.now
        let recovered = try await within(5, "query after recovery") {
            try await pool.query("SELECT count(*) AS n FROM t")
        }
        print("recovery: first query after the restart took \(String(format: "%.3f", seconds(since: start))) s")
        #expect(recovered.rows.first?["n"] == "1")
    }

    @Test func statementInsideATransactionIsNeverRetriedAfterTheConnectionIsLost() async throws {
        let cluster = try await startPrivateCluster()
        defer { cluster.destroy() }
        let pool = PostgresPool(configuration: .init(url: cluster.url, poolSize: 1), logger: testLogger)
        defer { Task { await pool.close() } }
        _ = try await pool.query("CREATE TABLE t (id int)")

        let error = await #expect(throws: PostgresError.self) {
            try await pool.transaction { connection in
                _ = try await connection.query("INSERT INTO t VALUES (1)")
                // The server restarts mid-transaction: it is up again, so a silent retry would "work".
                try await onThread {
                    try cluster.stopServer()
                    try cluster.startServer()
                }
                _ = try await connection.query("INSERT INTO t VALUES (2)")
            }
        }
        #expect(error?.kind == .unavailable)
        let rows = try await within(5, "query after the lost transaction") {
            try await pool.query("SELECT count(*) AS n FROM t")
        }
        #expect(rows.rows.first?["n"] == "0")
    }
}
