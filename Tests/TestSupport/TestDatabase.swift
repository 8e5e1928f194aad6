import Foundation

/// A fresh database per test, in one PostgreSQL shared by the whole test process, so tests never see each other's
/// rows.
///
/// The cluster is the one named by `TOKEN_GATEWAY_TEST_DATABASE_URL` when that is set (`scripts/test.sh` sets it);
/// otherwise a private cluster is started on first use and destroyed when the test process exits, so plain
/// `swift test` runs every suite. Without either, creating a database throws and says what to set or install:
/// a test that needs PostgreSQL fails, it is never skipped.
public enum TestDatabase {
    /// The superuser URL of the shared cluster, starting the private one if needed.
    public static func serverURL() throws -> String {
        if let url = TestEnvironment.databaseURL { return url }
        return try privateCluster.get().url
    }

    /// Started at most once per process (a static let is initialised once, thread-safely); a failure is kept, so
    /// every test reports the same reason instead of retrying.
    private static let privateCluster: Result<TemporaryPostgres, any Error> = Result {
        guard TestEnvironment.hasPostgresBinaries else {
            throw TestSupportError(
                "no PostgreSQL for the tests: set TOKEN_GATEWAY_TEST_DATABASE_URL to a superuser URL"
                    + " (scripts/test.sh does), or install postgresql-15 so the tests start their own"
                    + " (\(TemporaryPostgres.binDirectory)/initdb is missing)")
        }
        // As many connections as scripts/test.sh allows: parallel suites start whole gateways, each with a pool.
        let cluster = try TemporaryPostgres.start(maxConnections: 300)
        atexit { TestDatabase.destroyPrivateCluster() }
        return cluster
    }

    private static func destroyPrivateCluster() {
        if case .success(let cluster) = privateCluster { cluster.destroy() }
    }

    /// Creates an empty database in the shared cluster and returns its URL.
    public static func create(prefix: String = "t") throws -> String {
        let base = try serverURL()
        let name = "\(prefix)_\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff_ffff)"
        try TemporaryPostgres.psql(url: base, "CREATE DATABASE \(name)")
        guard let range = base.range(of: "/postgres?", options: .backwards) else {
            throw TestSupportError("unexpected test URL shape (expected .../postgres?...): \(base)")
        }
        var url = base
        url.replaceSubrange(range, with: "/\(name)?")
        return url
    }

    /// `create(prefix:)` off the cooperative pool.
    public static func make(prefix: String = "t") async throws -> String {
        try await onThread { try create(prefix: prefix) }
    }
}
