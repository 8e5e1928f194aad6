import Testing

@testable import Postgres

@Suite("Redaction of secrets in error text")
struct RedactorTests {
    @Test func passwordIsReadFromURIAndKeyValueForms() {
        #expect(ConnectionSettings.password(in: "postgresql://app:s%40cret@db:5432/x") == "s@cret")
        #expect(ConnectionSettings.password(in: "host=db user=app password=topsecret dbname=x") == "topsecret")
        #expect(ConnectionSettings.password(in: "postgresql://app@db/x") == nil)
        // Not parseable by libpq: fall back to the user-info part.
        #expect(ConnectionSettings.password(in: "postgresql://app:pw123@db/x?bogus_option=1") == "pw123")
    }

    @Test func cleanRemovesPasswordAndParameterValues() {
        let redactor = Redactor(password: "hunter2")
        let text = redactor.clean(
            #"invalid input syntax for type integer: "abc-hunter2-token" near "7""#,
            parameters: ["abc-hunter2-token", "7", nil, ""])
        #expect(!text.contains("hunter2"))
        #expect(!text.contains("abc-"))
        #expect(text.contains(#""<redacted>""#))
        #expect(!text.contains(#""7""#))
        // A short value is only replaced where quoted, so ordinary words and numbers survive.
        #expect(redactor.clean("column 7 of relation t", parameters: ["7"]) == "column 7 of relation t")
    }
}

/// Domain code calls the pool from actors; the closures may touch actor state (this must compile and run).
actor TenantCounter {
    private(set) var seen = 0

    func countTenants(pool: PostgresPool) async throws -> Int {
        try await pool.transaction { connection in
            let result = try await connection.query("SELECT 3 AS n")
            seen += Int(result.rows.first?["n"] ?? "0") ?? 0
            return seen
        }
    }
}

@Test func poolClosuresMayUseTheCallersActorState() async throws {
    let pool = PostgresPool(configuration: .init(url: try await SharedPostgres.freshDatabase()), logger: testLogger)
    defer { Task { await pool.close() } }
    let counter = TenantCounter()
    #expect(try await counter.countTenants(pool: pool) == 3)
    #expect(try await counter.countTenants(pool: pool) == 6)
}
