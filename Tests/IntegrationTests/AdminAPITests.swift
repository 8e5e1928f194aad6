import Foundation
import TestSupport
import Testing
import _CryptoExtras

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite
struct AdminAPITests {
    @Test func tenantRoundTripAndConflict() async throws {
        try await withHarness { h in
            let created = try await h.call("POST", "/tenants", json: #"{"id":"acme","name":"Acme Corp"}"#)
            #expect(created.status == 201)
            #expect(created["id"] == "acme" && created["name"] == "Acme Corp" && created["created_at"] != nil)
            #expect(try await h.call("POST", "/tenants", json: #"{"id":"acme"}"#).status == 409)
            let list = try await h.call("GET", "/tenants")
            #expect(list.json?["tenants"] == .array([try #require(created.json)]))
            #expect(try await h.call("GET", "/tenants/acme").json == created.json)
            #expect(try await h.call("DELETE", "/tenants/acme").status == 204)
            let gone = try await h.call("GET", "/tenants/acme")
            #expect(gone.status == 404 && gone["error"] == "not_found")
            #expect(try await h.call("DELETE", "/tenants/acme").status == 404)
        }
    }

    @Test func credentialsFollowTheContractTable() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey("acme")
            let missing = try await h.call("GET", "/tenants", token: nil)
            #expect(
                missing.status == 401 && missing.header("WWW-Authenticate") == "Bearer"
                    && missing["error"] == "unauthorized")
            #expect(try await h.call("GET", "/tenants", token: "wrong").status == 401)
            #expect(
                try await h.call("GET", "/tenants", token: "tgw_0123456789abcdef_" + String(repeating: "A", count: 43))
                    .status == 401)
            let forbidden = try await h.call("GET", "/tenants", token: key)
            #expect(forbidden.status == 403 && forbidden["error"] == "forbidden")
            let adminOnToken = try await h.call("POST", "/token", json: #"{"client":"crm"}"#)
            #expect(adminOnToken.status == 403)
            // Route first: unknown path 404 and wrong method 405 come before credentials.
            #expect(try await h.call("GET", "/nope", token: nil).status == 404)
            let wrongMethod = try await h.call("PUT", "/tenants", token: nil)
            #expect(wrongMethod.status == 405 && wrongMethod["error"] == "method_not_allowed")
            #expect(wrongMethod.header("Allow")?.contains("POST") == true)
        }
    }

    @Test func bodyChecksComeInContractOrder() async throws {
        try await withHarness(extra: ["TOKEN_GATEWAY_MAX_BODY_BYTES": "1024"]) { h in
            let big = #"{"id":"acme","name":""# + String(repeating: "x", count: 2000) + #""}"#
            let tooLarge = try await h.call("POST", "/tenants", json: big)
            #expect(tooLarge.status == 413 && tooLarge["error"] == "payload_too_large")
            let wrongType = try await h.call("POST", "/tenants", json: nil, headers: [("Content-Type", "text/plain")])
            #expect(wrongType.status == 400)  // empty body: nothing to type-check
            let textBody = try await h.http.send(
                .init(
                    method: "POST", url: h.baseURL + "/tenants",
                    headers: [
                        ("Authorization", "Bearer \(GatewayHarness.adminToken)"), ("Content-Type", "text/plain"),
                    ],
                    body: Array("{}".utf8)))
            #expect(textBody.status == 415)
            let malformed = try await h.call("POST", "/tenants", json: "{nope")
            #expect(malformed.status == 400 && malformed["error"] == "invalid_request")
            let badID = try await h.call("POST", "/tenants", json: #"{"id":"Not Valid"}"#)
            #expect(badID.status == 400 && badID["message"]?.hasPrefix("id:") == true)
            // Credentials are checked before the body.
            #expect(try await h.call("POST", "/tenants", token: nil, json: big).status == 401)
            // Nothing was created by any of these.
            #expect(try await h.call("GET", "/tenants").json?["tenants"] == .array([]))
        }
    }

    @Test func clientsOfEachGrantRoundTripWithoutSecrets() async throws {
        try await withHarness { h in
            _ = try await h.tenantWithKey("acme")
            let pem = try _RSA.Signing.PrivateKey(keySize: .bits2048).pkcs8PEMRepresentation
            let bodies = [
                #"{"id":"code","grant_type":"authorization_code","login_url":"\#(h.fake.baseURL)","client_id":"3MVG9a","client_secret":"sekrit-code","redirect_uri":"https://app.example.com/cb","scopes":["api","refresh_token"]}"#,
                #"{"id":"jwt","grant_type":"jwt_bearer","login_url":"\#(h.fake.baseURL)","client_id":"3MVG9b","username":"u@acme.example","private_key":"\#(pem.replacingOccurrences(of: "\n", with: "\\n"))"}"#,
                #"{"id":"cc","grant_type":"client_credentials","login_url":"\#(h.fake.baseURL)","client_id":"3MVG9c","client_secret":"sekrit-cc"}"#,
            ]
            for body in bodies {
                let created = try await h.call("POST", "/tenants/acme/clients", json: body)
                #expect(created.status == 201, "\(created.text)")
                #expect(!created.text.contains("sekrit") && !created.text.contains("PRIVATE KEY"))
            }
            let jwt = try await h.call("GET", "/tenants/acme/clients/jwt")
            #expect(jwt.json?["has_private_key"] == .bool(true) && jwt.json?["has_client_secret"] == .bool(false))
            #expect(jwt["audience"] == "https://login.salesforce.com")
            let list = try await h.call("GET", "/tenants/acme/clients")
            guard case .array(let clients)? = list.json?["clients"] else {
                Issue.record("no list")
                return
            }
            #expect(clients.count == 3)
            #expect(try await h.call("POST", "/tenants/acme/clients", json: bodies[2]).status == 409)

            let patched = try await h.call(
                "PATCH", "/tenants/acme/clients/code", json: #"{"token_ttl_seconds":600,"scopes":null}"#)
            #expect(
                patched.status == 200 && patched.json?["token_ttl_seconds"] == .number(600)
                    && patched.json?["scopes"] == .null)
            #expect(patched.json?["has_client_secret"] == .bool(true))
            let bad = try await h.call("PATCH", "/tenants/acme/clients/code", json: #"{"redirect_uri":null}"#)
            #expect(bad.status == 400 && bad["message"]?.hasPrefix("redirect_uri:") == true)

            // The implicit default connection of grants that need no person.
            let connections = try await h.call("GET", "/tenants/acme/clients/cc/connections")
            #expect(connections.text.contains(#""id":"default""#))
            #expect(try await h.call("DELETE", "/tenants/acme/clients/cc").status == 204)
            #expect(try await h.call("GET", "/tenants/acme/clients/cc").status == 404)
            #expect(try await h.call("GET", "/tenants/ghost/clients").status == 404)
        }
    }

    @Test func loginURLOutsideTheAllowListIsRefusedAndChangesNothing() async throws {
        try await withHarness { h in
            _ = try await h.tenantWithKey("acme")
            let reply = try await h.call(
                "POST", "/tenants/acme/clients",
                json: """
                    {"id":"x","grant_type":"client_credentials","login_url":"https://169.254.169.254","client_id":"a","client_secret":"b"}
                    """)
            #expect(reply.status == 400 && reply["message"]?.hasPrefix("login_url:") == true)
            #expect(try await h.call("GET", "/tenants/acme/clients/x").status == 404)
        }
    }

    @Test func deletedKeyIsRefusedAtOnceHereAndWithinASecondOnAnotherReplica() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey("acme")
            let other = try await h.replica()
            // Both replicas accept the key (the second learns it from the database on first sight).
            #expect(try await h.token(key: key).status == 404)
            #expect(try await other.token(key: key).status == 404)
            let id = try #require(KeyRegistry.keyID(of: key))
            #expect(try await h.call("DELETE", "/tenants/acme/keys/\(id)").status == 204)
            #expect(try await h.token(key: key).status == 401)
            let refused = try await eventually(within: 1.0) { try await other.token(key: key).status == 401 }
            #expect(refused)
            let keys = try await h.call("GET", "/tenants/acme/keys")
            #expect(keys.json?["keys"] == .array([]))
            await other.stop(stopFake: false)
        }
    }

    @Test func aKeyOfOneTenantCannotReachAnotherTenantsClient() async throws {
        try await withHarness { h in
            let acme = try await h.tenantWithKey("acme")
            let globex = try await h.tenantWithKey("globex")
            try await h.authorizationCodeClient(tenant: "acme")
            #expect(try await h.exchange(key: acme).status == 200)
            #expect(try await h.token(key: acme).status == 200)
            let foreign = try await h.token(key: globex)
            #expect(foreign.status == 404 && foreign["error"] == "not_found")
            #expect(try await h.exchange(key: globex).status == 404)
        }
    }

    @Test func deletingAConnectionOrClientRevokesRefreshTokensAtSalesforce() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key, connection: "one").status == 200)
            #expect(try await h.exchange(key: key, connection: "two").status == 200)
            let listed = try await h.call("GET", "/tenants/acme/clients/crm/connections")
            #expect(listed.text.contains(#""id":"one""#) && listed.text.contains(#""id":"two""#))
            #expect(try await h.call("DELETE", "/tenants/acme/clients/crm/connections/one").status == 204)
            #expect(try await h.call("DELETE", "/tenants/acme/clients/crm/connections/one").status == 404)
            #expect(try await h.token(key: key, connection: "one").status == 404)
            #expect(await eventually(within: 5) { h.fake.stats.revokeCalls == 1 })
            #expect(try await h.token(key: key, connection: "two").status == 200)
            #expect(try await h.call("DELETE", "/tenants/acme").status == 204)
            #expect(await eventually(within: 5) { h.fake.stats.revokeCalls == 2 })
            #expect(try await h.token(key: key, connection: "two").status == 401)  // the tenant's keys went with it
        }
    }

    @Test func secretsNeverAppearInResponsesOrTheDatabase() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey("acme")
            try await h.authorizationCodeClient(rotate: true)
            let exchanged = try await h.exchange(key: key)
            #expect(exchanged.status == 200)
            let accessToken = try #require(exchanged["access_token"])
            let refreshTokens = h.fake.refreshTokens(clientID: "3MVG9-crm")
            #expect(!refreshTokens.isEmpty)
            var everything = ""
            for path in [
                "/tenants", "/tenants/acme", "/tenants/acme/keys", "/tenants/acme/clients", "/tenants/acme/clients/crm",
                "/tenants/acme/clients/crm/connections", "/tenants/acme/audit",
            ] {
                everything += try await h.call("GET", path).text
            }
            let databaseURL = h.databaseURL
            let dump = try await onThread {
                try TemporaryPostgres.psql(
                    url: databaseURL,
                    """
                    SELECT string_agg(t::text, E'\\n') FROM (
                      SELECT row_to_json(x)::text AS t FROM tenants x UNION ALL SELECT row_to_json(x)::text FROM api_keys x
                      UNION ALL SELECT row_to_json(x)::text FROM clients x UNION ALL SELECT row_to_json(x)::text FROM connections x
                      UNION ALL SELECT row_to_json(x)::text FROM audit_events x) rows
                    """)
            }
            #expect(dump.contains("3MVG9-crm"))  // the dump is real
            for secret in [GatewayHarness.secret, key, GatewayHarness.adminToken, accessToken] + refreshTokens {
                #expect(!everything.contains(secret))
                #expect(!dump.contains(secret))
            }
        }
    }

    @Test func auditRecordsWhoDidWhatWithoutSecrets() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey("acme")
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            #expect(try await h.call("DELETE", "/tenants/acme/clients/crm").status == 204)
            let audit = try await h.call("GET", "/tenants/acme/audit?limit=2")
            guard case .array(let events)? = audit.json?["events"] else {
                Issue.record("no events")
                return
            }
            #expect(events.count == 2)
            #expect(events[0]["action"] == .string("client.delete") && events[0]["actor"] == .string("admin"))
            #expect(events[1]["action"] == .string("connection.authorize"))
            #expect(events[1]["actor"]?.stringValue?.hasPrefix("key:") == true)
            let next = try #require(audit["next"])
            let older = try await h.call("GET", "/tenants/acme/audit?before=\(next)")
            #expect(older.text.contains("tenant.create") && older.text.contains("key.create"))
            #expect(try await h.call("GET", "/tenants/acme/audit?limit=0").status == 400)
        }
    }

    @Test func rekeyResealsEverythingAndOldKeyCanThenBeDropped() async throws {
        let old = Keyring.generateKeyLine(id: "old")
        let url = try await TestDatabase.make(prefix: "rekey")
        let first = try await GatewayHarness.start(databaseURL: url, keys: old)
        let key = try await first.tenantWithKey("acme")
        try await first.authorizationCodeClient()
        #expect(try await first.exchange(key: key).status == 200)
        await first.stop(stopFake: false)

        let new = Keyring.generateKeyLine(id: "new")
        let both = try Keyring(parsing: new + "," + old)
        let pool = PostgresPoolFactory.make(url)
        let count = try await Rekey.run(pool: pool, keyring: both)
        #expect(count == 3)  // client secret, refresh token, access token
        #expect(try await Rekey.run(pool: pool, keyring: both) == 0)
        await pool.close()
        let sealed = try await onThread {
            try TemporaryPostgres.psql(
                url: url,
                "SELECT concat_ws(',', client_secret) FROM clients UNION ALL SELECT concat_ws(',', refresh_token, access_token) FROM connections"
            )
        }
        #expect(!sealed.contains("old:") && sealed.contains("new:"))

        // Only the new key now: the refresh token still opens and a fresh token is fetched with it.
        let second = try await GatewayHarness.start(databaseURL: url, keys: new, fake: first.fake)
        let token = try await second.token(key: key, extra: #","force_refresh":true,"min_ttl_seconds":86400"#)
        #expect(token.status == 200, "\(token.text)")
        await second.stop()
    }

    @Test func aCiphertextMovedToAnotherRowDoesNotOpen() async throws {
        try await withHarness { h in
            let key = try await h.tenantWithKey("acme")
            try await h.authorizationCodeClient(id: "one", clientID: "3MVG9-one")
            try await h.authorizationCodeClient(id: "two", clientID: "3MVG9-two")
            #expect(try await h.exchange(key: key, client: "one", clientID: "3MVG9-one").status == 200)
            #expect(try await h.exchange(key: key, client: "two", clientID: "3MVG9-two").status == 200)
            let databaseURL = h.databaseURL
            _ = try await onThread {
                try TemporaryPostgres.psql(
                    url: databaseURL,
                    """
                    UPDATE connections SET refresh_token = (SELECT refresh_token FROM connections WHERE client_id = 'one'),
                      access_token = NULL WHERE client_id = 'two'
                    """)
            }
            h.gateway.api.cache.removeAll()
            let moved = try await h.token(key: key, client: "two")
            #expect(moved.status == 500)
            #expect(!moved.text.contains("refresh"))
            #expect(try await h.token(key: key, client: "one").status == 200)
        }
    }
}
