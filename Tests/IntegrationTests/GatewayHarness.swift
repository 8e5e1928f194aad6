import FakeSalesforce
import Foundation
import HTTPClient
import Logging
import Postgres
import Synchronization
import TestSupport
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// A gateway on 127.0.0.1 (port 0) against a fresh database of the test cluster and a fake Salesforce.
/// Every test makes its own and calls `stop()` in a `defer`-like way (`withHarness`).
final class GatewayHarness: Sendable {
    static let adminToken = "admin-" + String(repeating: "0123456789", count: 4)
    let fake: FakeSalesforce
    let databaseURL: String
    let keysSetting: String
    let gateway: Gateway
    let http: HTTPClient
    let extraSettings: [String: String]

    var baseURL: String { "http://127.0.0.1:\(gateway.port)" }

    static func logger() -> Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    static func settings(databaseURL: String, keys: String, extra: [String: String]) -> [String: String] {
        var values = [
            "DATABASE_URL": databaseURL, "TOKEN_GATEWAY_ADMIN_TOKEN": adminToken, "TOKEN_GATEWAY_ENCRYPTION_KEYS": keys,
            "TOKEN_GATEWAY_LISTEN": "127.0.0.1:0", "TOKEN_GATEWAY_UPSTREAM_ALLOWLIST": "http://127.0.0.1",
            "TOKEN_GATEWAY_THREADS": "2", "TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "5",
            "TOKEN_GATEWAY_SHUTDOWN_GRACE_SECONDS": "2",
            "TOKEN_GATEWAY_PUBLIC_URL": "http://127.0.0.1:1",
        ]
        for (name, value) in extra { values[name] = value }
        return values
    }

    private init(fake: FakeSalesforce, databaseURL: String, keys: String, gateway: Gateway, extra: [String: String])
        throws
    {
        self.fake = fake
        self.databaseURL = databaseURL
        self.keysSetting = keys
        self.gateway = gateway
        self.extraSettings = extra
        http = try HTTPClient(configuration: HTTPClientConfiguration(totalTimeout: .seconds(30)), logger: Self.logger())
    }

    static func start(
        databaseURL: String? = nil, keys: String? = nil, fake: FakeSalesforce? = nil, extra: [String: String] = [:],
        logger gatewayLogger: Logger? = nil
    ) async throws -> GatewayHarness {
        let url: String
        if let databaseURL { url = databaseURL } else { url = try await TestDatabase.make(prefix: "gw") }
        let keys = keys ?? Keyring.generateKeyLine(id: "k1")
        let fake = try fake ?? FakeSalesforce.start(logger: logger())
        let configuration = try GatewayConfiguration.make(settings(databaseURL: url, keys: keys, extra: extra))
        let gateway = try await Gateway.start(configuration: configuration, logger: gatewayLogger ?? logger())
        // Gateway.start does not wait for its LISTEN connection; a test that changes something on another replica
        // right away would otherwise race it and miss the notification.
        guard await eventually(within: 10, { gateway.listener.isConnected }) else {
            await gateway.shutdown()
            throw TestSupportError("the gateway's LISTEN connection did not come up within 10 s")
        }
        return try GatewayHarness(fake: fake, databaseURL: url, keys: keys, gateway: gateway, extra: extra)
    }

    /// A second replica on the same database and fake Salesforce.
    func replica(extra: [String: String]? = nil) async throws -> GatewayHarness {
        try await Self.start(databaseURL: databaseURL, keys: keysSetting, fake: fake, extra: extra ?? extraSettings)
    }

    func stop(stopFake: Bool = true) async {
        await gateway.shutdown()
        http.shutdown()
        if stopFake { await fake.shutdown() }
    }

    struct Reply: Sendable {
        var status: Int
        var json: JSONValue?
        var headers: [(String, String)]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        subscript(_ key: String) -> String? { json?[key]?.stringValue }
    }

    func call(
        _ method: String, _ path: String, token: String? = adminToken, json: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> Reply {
        var all = headers
        if let token { all.append(("Authorization", "Bearer \(token)")) }
        if json != nil { all.append(("Content-Type", "application/json")) }
        let response = try await http.send(
            HTTPClientRequest(
                method: method, url: baseURL + path, headers: all, body: Array((json ?? "").utf8)))
        return Reply(
            status: response.status, json: try? JSONValue.parse(response.body), headers: response.headers,
            body: response.body)
    }

    // MARK: Fixtures

    static let secret = "5E8F-test-client-secret-0001"
    static let redirect = "https://app.example.com/oauth/callback"

    /// Creates a tenant and a key; returns the key.
    func tenantWithKey(_ tenant: String = "acme") async throws -> String {
        let created = try await call("POST", "/tenants", json: #"{"id":"\#(tenant)","name":"Acme"}"#)
        #expect(created.status == 201)
        let key = try await call("POST", "/tenants/\(tenant)/keys", json: #"{"name":"billing"}"#)
        #expect(key.status == 201)
        return try #require(key["key"])
    }

    /// Registers an authorization-code app at the fake and the matching client at the gateway.
    func authorizationCodeClient(
        tenant: String = "acme", id: String = "crm", clientID: String = "3MVG9-crm", rotate: Bool = false,
        scopes: String = "api web refresh_token", ttl: Int = 3600
    ) async throws {
        fake.register(
            FakeConnectedApp(
                clientID: clientID, clientSecret: Self.secret,
                redirectURIs: [Self.redirect, "http://127.0.0.1:1/callback"],
                rotateRefreshTokens: rotate, scopes: scopes))
        fake.addUser("ops@acme.example")
        let reply = try await call(
            "POST", "/tenants/\(tenant)/clients",
            json: """
                {"id":"\(id)","grant_type":"authorization_code","login_url":"\(fake.baseURL)","client_id":"\(clientID)",
                 "client_secret":"\(Self.secret)","redirect_uri":"\(Self.redirect)","token_ttl_seconds":\(ttl)}
                """)
        #expect(reply.status == 201, "\(reply.text)")
    }

    /// Registers an app at the fake whose callback is this gateway's `/callback` (start the harness on a fixed port
    /// with `TOKEN_GATEWAY_PUBLIC_URL` pointing at it), a user who approves, and the client "web" at the gateway.
    func browserFlowClient(tenant: String = "acme") async throws {
        fake.register(
            FakeConnectedApp(
                clientID: "3MVG9-web", clientSecret: Self.secret, redirectURIs: ["\(baseURL)/callback"]))
        fake.addUser("ops@acme.example")
        fake.setAuthorizeUser("ops@acme.example")
        let reply = try await call(
            "POST", "/tenants/\(tenant)/clients",
            json: """
                {"id":"web","grant_type":"authorization_code","login_url":"\(fake.baseURL)","client_id":"3MVG9-web",
                 "client_secret":"\(Self.secret)","redirect_uri":"https://unused.example/cb","scopes":["api","refresh_token"]}
                """)
        #expect(reply.status == 201, "\(reply.text)")
    }

    /// Registers a client-credentials app (run as `runAs`) at the fake and the client "cc" at the gateway.
    func clientCredentialsClient(tenant: String = "acme", runAs: String) async throws {
        fake.register(
            FakeConnectedApp(
                clientID: "3MVG9-cc", clientSecret: "cc-secret", redirectURIs: [], clientCredentialsUser: runAs))
        let reply = try await call(
            "POST", "/tenants/\(tenant)/clients",
            json: """
                {"id":"cc","grant_type":"client_credentials","login_url":"\(fake.baseURL)","client_id":"3MVG9-cc","client_secret":"cc-secret"}
                """)
        #expect(reply.status == 201, "\(reply.text)")
    }

    /// Runs /exchange with a fresh code for `client` and returns the reply.
    func exchange(
        key: String, client: String = "crm", clientID: String = "3MVG9-crm", connection: String = "default",
        transform: (String) -> String = { $0 }
    ) async throws -> Reply {
        let code = fake.issueAuthorizationCode(
            clientID: clientID, redirectURI: Self.redirect, username: "ops@acme.example")
        let pasted = transform(code).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
            of: "\"", with: "\\\"")
        return try await call(
            "POST", "/exchange", token: key,
            json: #"{"client":"\#(client)","code":"\#(pasted)","connection":"\#(connection)"}"#)
    }

    func token(key: String, client: String = "crm", connection: String = "default", extra: String = "") async throws
        -> Reply
    {
        try await call(
            "POST", "/token", token: key, json: #"{"client":"\#(client)","connection":"\#(connection)"\#(extra)}"#)
    }
}

/// Runs `body` with a started harness (its gateway logging to `logger`, quiet by default) and always stops it.
func withHarness(
    extra: [String: String] = [:], logger: Logger? = nil, _ body: (GatewayHarness) async throws -> Void
) async throws {
    let harness = try await GatewayHarness.start(extra: extra, logger: logger)
    do {
        try await body(harness)
    } catch {
        await harness.stop()
        throw error
    }
    await harness.stop()
}

/// `withHarness` on a fixed port with `TOKEN_GATEWAY_PUBLIC_URL` pointing at it, so authorize links land on it.
func withCallbackHarness(_ body: (GatewayHarness) async throws -> Void) async throws {
    let port = try freeLocalPort()
    try await withHarness(
        extra: ["TOKEN_GATEWAY_LISTEN": "127.0.0.1:\(port)", "TOKEN_GATEWAY_PUBLIC_URL": "http://127.0.0.1:\(port)"],
        body)
}

/// A small pool for tests that work on the database directly.
enum PostgresPoolFactory {
    static func make(_ url: String) -> PostgresPool {
        PostgresPool(configuration: PostgresConfiguration(url: url, poolSize: 2), logger: GatewayHarness.logger())
    }
}

/// Keeps the JSON lines a gateway logs, for tests that read them.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    /// Every line so far.
    var all: [String] { lines.withLock { $0 } }

    /// A logger at `level` whose lines are kept here.
    func logger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "gateway") { label in
            JSONLogHandler(label: label, sink: { line in self.lines.withLock { $0.append(line) } })
        }
        logger.logLevel = level
        return logger
    }
}
