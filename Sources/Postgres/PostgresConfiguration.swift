/// Settings of a `PostgresPool`: where the database is and how many connections it may hold.
public struct PostgresConfiguration: Sendable {
    /// libpq connection URI (or key=value string), e.g. `postgresql://user@127.0.0.1:5432/db`.
    public var url: String
    /// The most connections the pool opens at once.
    public var poolSize: Int = 8
    /// libpq `connect_timeout` for every (re)connect; libpq treats values below 2 as 2.
    public var connectTimeoutSeconds: Int = 3
    /// How long a caller waits for a free connection before failing with `.poolExhausted`.
    public var acquireTimeoutSeconds: Double = 5

    /// Creates a configuration; see the properties for the meaning and defaults.
    public init(url: String, poolSize: Int = 8, connectTimeoutSeconds: Int = 3, acquireTimeoutSeconds: Double = 5) {
        self.url = url
        self.poolSize = poolSize
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.acquireTimeoutSeconds = acquireTimeoutSeconds
    }
}
