import HTTPClient
import HTTPServer
import Logging
import Postgres

@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// The gateway's objects wired as `Gateway` wires them, over a database that does not exist: the pool connects
/// on first use, so a test that passes proves its path touched neither PostgreSQL nor Salesforce (any query
/// would fail with 503).
struct GatewayFixture {
    static let adminToken = String(repeating: "0123456789abcdef", count: 2)

    let api: GatewayAPI
    let tokens: TokenService
    let keys: KeyRegistry
    let cache: TokenCache
    let webhooks: WebhookDispatcher
    let router: Router
    let pool: PostgresPool
    let http: HTTPClient

    init() throws {
        var logger = Logger(label: "gateway-fixture")
        logger.logLevel = .critical  // the absent database is the point, not news
        let configuration = try GatewayConfiguration.make([
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/unused",
            "TOKEN_GATEWAY_ADMIN_TOKEN": Self.adminToken,
            "TOKEN_GATEWAY_ENCRYPTION_KEYS": Keyring.generateKeyLine(id: "k1"),
        ])
        pool = PostgresPool(
            configuration: PostgresConfiguration(url: configuration.databaseURL, acquireTimeoutSeconds: 1),
            logger: logger)
        http = try HTTPClient(configuration: HTTPClientConfiguration(), logger: logger)
        let store = GatewayStore(pool: pool, keyring: configuration.keyring)
        let metrics = Metrics()
        cache = TokenCache()
        keys = KeyRegistry(adminToken: configuration.adminToken)
        let salesforce = SalesforceTokenEndpoint(http: http, metrics: metrics, logger: logger)
        tokens = TokenService(
            store: store, cache: cache, salesforce: salesforce, metrics: metrics, logger: logger,
            forceRefreshGraceSeconds: configuration.forceRefreshGraceSeconds,
            keyUpstreamLimitPerMinute: configuration.keyUpstreamLimitPerMinute)
        webhooks = WebhookDispatcher(store: store, http: http, metrics: metrics, logger: logger)
        api = GatewayAPI(
            configuration: configuration.apiSettings, store: store, keys: keys, cache: cache, tokens: tokens,
            salesforce: salesforce, metrics: metrics, logger: logger, readiness: { (true, nil) })
        router = api.makeRouter()
    }

    /// A new key of `tenant`, known to the registry as if loaded from the database.
    func addKey(tenant: String) -> (id: String, key: String) {
        let made = KeyRegistry.generate()
        keys.insert(id: made.id, tenant: tenant, hexHash: made.hash)
        return (made.id, made.key)
    }

    /// A token for `key` that has an hour left, put in memory.
    func cacheToken(_ key: ConnectionKey, access: String = "00Dxx!fixture") -> CachedToken {
        let now = WallClock.now
        let token = CachedToken(
            accessToken: access, instanceURL: "https://example.my.salesforce.com",
            identityURL: "https://login.salesforce.com/id/00D/005", scope: "api refresh_token", tokenType: "Bearer",
            issuedAt: now - 60, expiresAt: now + 3600, fetchedAt: now - 60)
        cache.put(key, token)
        return token
    }

    /// Sends `request` through the router and waits for its answer.
    func send(_ method: String, _ path: String, bearer: String? = nil, json: String? = nil) async -> HTTPResponse {
        var headers = HTTPHeaders()
        if let bearer { headers.add("Authorization", "Bearer \(bearer)") }
        if json != nil { headers.add("Content-Type", "application/json") }
        let request = HTTPRequest(method: method, path: path, headers: headers, body: Array((json ?? "").utf8))
        switch router.handle(request) {
        case .response(let response): return response
        case .deferred(let work): return await work()
        }
    }

    /// Whether `request` was answered at once, on the calling thread (the fast path).
    func answersAtOnce(_ method: String, _ path: String, bearer: String?, json: String?) -> Bool {
        var headers = HTTPHeaders()
        if let bearer { headers.add("Authorization", "Bearer \(bearer)") }
        if json != nil { headers.add("Content-Type", "application/json") }
        let request = HTTPRequest(method: method, path: path, headers: headers, body: Array((json ?? "").utf8))
        if case .response = router.handle(request) { return true }
        return false
    }

    func close() async {
        http.shutdown()
        await pool.close()
    }
}
