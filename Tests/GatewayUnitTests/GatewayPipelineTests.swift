import Codecs
import HTTPServer
import Testing

@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// `GatewayAPI.serve` and `Gateway.apply` without I/O: the router, the credential checks, the chain every answer
/// passes, and what other replicas' notifications change in memory. The fixture's database does not exist, so
/// every answer here comes from memory.
@Suite struct GatewayPipelineTests {
    static func json(_ response: HTTPResponse) -> JSONValue? { try? JSONValue.parse(response.body) }

    @Test func aCacheHitIsAnsweredAtOnceFromMemoryWithNoStore() async throws {
        let fixture = try GatewayFixture()
        let (_, key) = fixture.addKey(tenant: "acme")
        let cached = fixture.cacheToken(ConnectionKey(tenant: "acme", client: "crm", connection: "default"))
        #expect(fixture.answersAtOnce("POST", "/token", bearer: key, json: #"{"client":"crm"}"#))
        let response = await fixture.send("POST", "/token", bearer: key, json: #"{"client":"crm"}"#)
        #expect(response.status == 200)
        #expect(response.headers["Cache-Control"] == "no-store")
        let body = Self.json(response)
        #expect(body?["access_token"]?.stringValue == cached.accessToken)
        #expect(body?["source"]?.stringValue == "cache")
        #expect(body?["connection"]?.stringValue == "default")
        #expect(fixture.api.metrics.render().contains(#"token_gateway_requests_total{route="/token",status="200"} 2"#))
        await fixture.close()
    }

    @Test func aKeyReachesOnlyItsOwnTenantsConnections() async throws {
        let fixture = try GatewayFixture()
        let (_, key) = fixture.addKey(tenant: "acme")
        _ = fixture.cacheToken(ConnectionKey(tenant: "globex", client: "crm", connection: "default"))
        // Not cached for acme: the request goes to the database, which is down, and no other tenant's token leaks.
        let response = await fixture.send("POST", "/token", bearer: key, json: #"{"client":"crm"}"#)
        #expect(response.status == 503)
        #expect(Self.json(response)?["access_token"] == nil)
        await fixture.close()
    }

    @Test func credentialsAreCheckedBeforeAnyHandlerRuns() async throws {
        let fixture = try GatewayFixture()
        let (_, key) = fixture.addKey(tenant: "acme")
        let missing = await fixture.send("POST", "/token", json: #"{"client":"crm"}"#)
        #expect(missing.status == 401 && missing.headers["WWW-Authenticate"] == "Bearer")
        #expect(missing.headers["Cache-Control"] == "no-store", "errors of token routes are not cached either")
        let admin = await fixture.send("POST", "/token", bearer: GatewayFixture.adminToken, json: #"{"client":"c"}"#)
        #expect(admin.status == 403 && Self.json(admin)?["error"]?.stringValue == "forbidden")
        let tenantOnAdmin = await fixture.send("GET", "/tenants", bearer: key)
        #expect(tenantOnAdmin.status == 403)
        let wrong = await fixture.send("GET", "/tenants", bearer: "not-a-credential")
        #expect(wrong.status == 401)
        await fixture.close()
    }

    @Test func badBodiesGetTheContractsErrorsAndChangeNothing() async throws {
        let fixture = try GatewayFixture()
        let (_, key) = fixture.addKey(tenant: "acme")
        let cases: [(String, Int, String)] = [
            (#"{"client":"crm","extra":1}"#, 400, "invalid_request"),
            (#"{"client":"crm","min_ttl_seconds":-1}"#, 400, "invalid_request"),
            (#"{"client":"crm","force_refresh":"yes"}"#, 400, "invalid_request"),
            (#"[1]"#, 400, "invalid_request"),
            (#"{"#, 400, "invalid_request"),
        ]
        for (body, status, code) in cases {
            let response = await fixture.send("POST", "/token", bearer: key, json: body)
            #expect(response.status == status && Self.json(response)?["error"]?.stringValue == code, "\(body)")
        }
        #expect(fixture.cache.get(ConnectionKey(tenant: "acme", client: "crm", connection: "default")) == nil)
        await fixture.close()
    }

    @Test func publicRoutesAndUnknownPathsNeedNoCredential() async throws {
        let fixture = try GatewayFixture()
        let health = await fixture.send("GET", "/healthz")
        #expect(health.status == 200 && Self.json(health)?["status"]?.stringValue == "ok")
        #expect(health.headers["Cache-Control"] == nil)
        let unknown = await fixture.send("GET", "/nowhere")
        #expect(unknown.status == 404 && Self.json(unknown)?["error"]?.stringValue == "not_found")
        let method = await fixture.send("DELETE", "/token")
        #expect(method.status == 405 && method.headers["Allow"] == "POST")
        await fixture.close()
    }

    @Test func everyErrorCodeHasTheContractsStatus() {
        let expected: [GatewayError.Code: Int] = [
            .invalidRequest: 400, .invalidGrant: 400, .unauthorized: 401, .forbidden: 403, .notFound: 404,
            .methodNotAllowed: 405, .conflict: 409, .clientRejected: 409, .reauthorizationRequired: 409,
            .payloadTooLarge: 413, .unsupportedMediaType: 415, .rateLimited: 429, .upstreamRateLimited: 429,
            .internalError: 500, .notImplemented: 501, .upstreamError: 502, .unavailable: 503, .upstreamTimeout: 504,
        ]
        #expect(Set(expected.keys) == Set(GatewayError.Code.allCases))
        for code in GatewayError.Code.allCases {
            let response = GatewayError(code, message: "m", retryAfterSeconds: 3).response
            #expect(response.status == expected[code], "\(code)")
            #expect(Self.json(response)?["error"]?.stringValue == code.rawValue)
            #expect(response.headers["Retry-After"] == "3")
        }
    }

    // MARK: Gateway.apply: another replica's notifications

    @Test func aDeletedKeyIsRefusedAtOnce() async throws {
        let fixture = try GatewayFixture()
        let (id, key) = fixture.addKey(tenant: "acme")
        _ = fixture.cacheToken(ConnectionKey(tenant: "acme", client: "crm", connection: "default"))
        #expect(await fixture.send("POST", "/token", bearer: key, json: #"{"client":"crm"}"#).status == 200)
        Gateway.apply(
            .keyDeleted(id: id), tokens: fixture.tokens, keys: fixture.keys, cache: fixture.cache,
            webhooks: fixture.webhooks)
        #expect(fixture.keys.check(authorization: "Bearer \(key)") != .key(id: id, tenant: "acme"))
        await fixture.close()
    }

    @Test func staleTokensAndDeletedTenantsLeaveMemory() async throws {
        let fixture = try GatewayFixture()
        let one = ConnectionKey(tenant: "acme", client: "crm", connection: "default")
        let two = ConnectionKey(tenant: "acme", client: "crm", connection: "eu")
        let other = ConnectionKey(tenant: "globex", client: "crm", connection: "default")
        for key in [one, two, other] { _ = fixture.cacheToken(key) }
        Gateway.apply(
            .tokensStale(tenant: "acme", client: "crm", connection: "default"), tokens: fixture.tokens,
            keys: fixture.keys, cache: fixture.cache, webhooks: fixture.webhooks)
        #expect(fixture.cache.get(one) == nil && fixture.cache.get(two) != nil && fixture.cache.get(other) != nil)
        Gateway.apply(
            .tenantDeleted(tenant: "acme"), tokens: fixture.tokens, keys: fixture.keys, cache: fixture.cache,
            webhooks: fixture.webhooks)
        #expect(fixture.cache.get(two) == nil && fixture.cache.get(other) != nil)
        await fixture.close()
    }

    @Test func aForcedRefreshOfAnotherReplicaDropsTheCachedTokenButOurOwnKeepsIt() async throws {
        let fixture = try GatewayFixture()
        let key = ConnectionKey(tenant: "acme", client: "crm", connection: "default")
        _ = fixture.cacheToken(key)
        Gateway.apply(
            .leaseEnded(key, origin: fixture.tokens.origin, forced: true), tokens: fixture.tokens,
            keys: fixture.keys, cache: fixture.cache, webhooks: fixture.webhooks)
        #expect(fixture.cache.get(key) != nil)
        Gateway.apply(
            .leaseEnded(key, origin: "other", forced: false), tokens: fixture.tokens, keys: fixture.keys,
            cache: fixture.cache, webhooks: fixture.webhooks)
        #expect(fixture.cache.get(key) != nil)
        Gateway.apply(
            .leaseEnded(key, origin: "other", forced: true), tokens: fixture.tokens, keys: fixture.keys,
            cache: fixture.cache, webhooks: fixture.webhooks)
        #expect(fixture.cache.get(key) == nil)
        await fixture.close()
    }
}
