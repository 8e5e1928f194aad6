import Foundation
import Postgres
import TestSupport
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// The webhook routes: bad input refused with nothing stored, the secret shown once and kept sealed, deletes.
@Suite struct WebhookAdminTests {
    @Test func badWebhookInputIsRefusedNamingTheFieldAndNothingIsStored() async throws {
        try await withWebhookHarness { h, receiver in
            _ = try await h.tenantWithKey()
            let cases: [(String, String)] = [
                (#"{"url":"https://ops.example.com/hook"}"#, "url: "),
                (#"{"url":"\#(receiver.url)","events":["connection.deleted"]}"#, "events: "),
                (#"{"url":"\#(receiver.url)","events":[]}"#, "events: "),
                (#"{"url":"\#(receiver.url)","events":"client.rejected"}"#, "events: "),
                (#"{"url":"\#(receiver.url)","secret":"whsec_mine"}"#, "secret: unknown field"),
                (#"{"events":["client.rejected"]}"#, "url: is required"),
                (#"{"url":"\#(receiver.url)\u0000x"}"#, "url: "),
                (#"{"url":42}"#, "url: "),
            ]
            for (body, field) in cases {
                let refused = try await h.call("POST", "/tenants/acme/webhooks", json: body)
                #expect(refused.status == 400 && refused["error"] == "invalid_request", "\(body): \(refused.text)")
                #expect(refused["message"]?.hasPrefix(field) == true, "\(body): \(refused.text)")
            }
            #expect(try await h.call("POST", "/tenants/acme/webhooks", json: "[1]").status == 400)
            #expect(try await h.rows("webhooks") == 0)
            let listed = try await h.call("GET", "/tenants/acme/webhooks")
            #expect(listed.status == 200 && listed.json?["webhooks"] == .array([]), "\(listed.text)")

            let key = try #require(try await h.call("POST", "/tenants/acme/keys", json: "{}")["key"])
            let forbidden = try await h.call("POST", "/tenants/acme/webhooks", token: key, json: #"{"url":"x"}"#)
            #expect(forbidden.status == 403)
            #expect(try await h.call("GET", "/tenants/acme/webhooks", token: nil).status == 401)
            #expect(
                try await h.call("POST", "/tenants/nope/webhooks", json: #"{"url":"\#(receiver.url)"}"#).status == 404)
            #expect(try await h.call("GET", "/tenants/nope/webhooks").status == 404)
            #expect(try await h.call("DELETE", "/tenants/acme/webhooks/wh_0123456789abcdef").status == 404)
            #expect(try await h.call("DELETE", "/tenants/acme/webhooks/not-an-id").status == 404)
            #expect(try await h.rows("webhooks") == 0)
        }
    }

    @Test func withoutAnAllowListOnlyHTTPSOnADNSNameIsAccepted() async throws {
        try await withHarness { h in
            _ = try await h.tenantWithKey()
            let local = try await h.call("POST", "/tenants/acme/webhooks", json: #"{"url":"http://127.0.0.1:9/h"}"#)
            #expect(local.status == 400 && local["message"]?.hasPrefix("url: must be https") == true, "\(local.text)")
            let literal = try await h.call("POST", "/tenants/acme/webhooks", json: #"{"url":"https://10.1.2.3/h"}"#)
            #expect(literal.status == 400)
            let created = try await h.call(
                "POST", "/tenants/acme/webhooks", json: #"{"url":"https://ops.example.com/hooks/tgw"}"#)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.header("Cache-Control") == "no-store")
            #expect(created.json?["events"] == .array(WebhookEventType.allCases.map { .string($0.rawValue) }))
            #expect(created.json?["last_delivery"] == .null && created["id"]?.hasPrefix("wh_") == true)
            #expect(created["created_at"]?.hasSuffix("Z") == true)
        }
    }

    @Test func theSecretNeverAppearsInALogAResponseAfterCreationOrTheDatabase() async throws {
        let lines = LogLines()
        try await withWebhookHarness(logger: lines.logger(level: .trace)) { h, receiver in
            let (key, id, secret) = try await h.connectedWithWebhook(url: receiver.url)
            #expect(secret.hasPrefix("whsec_"))
            receiver.script([.status(500)])
            try await h.breakConnection(key: key)
            #expect(await eventually(within: 10) { receiver.received.count == 2 })
            #expect(WebhookReceiver.verifies(try #require(receiver.received.last), secret: secret))

            var everything = ""
            for path in ["/tenants/acme/webhooks", "/tenants/acme/audit", "/metrics"] {
                everything += try await h.call("GET", path).text
            }
            let dump = try await onThread {
                try TemporaryPostgres.psql(
                    url: h.databaseURL,
                    """
                    SELECT string_agg(t::text, E'\\n') FROM (
                      SELECT row_to_json(x)::text AS t FROM webhooks x
                      UNION ALL SELECT row_to_json(x)::text FROM webhook_deliveries x
                      UNION ALL SELECT row_to_json(x)::text FROM audit_events x) rows
                    """)
            }
            #expect(dump.contains(id) && everything.contains(id))  // the dump and the answers are real
            #expect(everything.contains("webhook.create"))
            let logged = lines.all.joined(separator: "\n")
            #expect(logged.contains("webhook delivery"))  // the log is real
            for text in [secret, String(secret.dropFirst(6))] {
                #expect(!logged.contains(text))
                #expect(!everything.contains(text))
                #expect(!dump.contains(text))
            }
        }
    }

    @Test func rekeyResealsWebhookSecretsAndDeliveriesStillVerify() async throws {
        try await withReceiver { receiver in
            let old = Keyring.generateKeyLine(id: "old")
            let url = try await TestDatabase.make(prefix: "whrekey")
            let settings = ["TOKEN_GATEWAY_WEBHOOK_ALLOWLIST": receiver.allowPattern]
            let first = try await GatewayHarness.start(databaseURL: url, keys: old, extra: settings)
            let (key, _, secret) = try await first.connectedWithWebhook(url: receiver.url)
            await first.stop(stopFake: false)

            let new = Keyring.generateKeyLine(id: "new")
            let pool = PostgresPoolFactory.make(url)
            #expect(try await Rekey.run(pool: pool, keyring: try Keyring(parsing: new + "," + old)) == 4)
            await pool.close()
            let sealed = try await onThread { try TemporaryPostgres.psql(url: url, "SELECT secret FROM webhooks") }
            #expect(sealed.hasPrefix("new:"), "\(sealed)")

            // Only the new key: the secret still opens and signs.
            let second = try await GatewayHarness.start(databaseURL: url, keys: new, fake: first.fake, extra: settings)
            try await second.breakConnection(key: key)
            #expect(await eventually(within: 5) { receiver.received.count == 1 })
            #expect(WebhookReceiver.verifies(try #require(receiver.received.first), secret: secret))
            await second.stop()
        }
    }

    @Test func deletingAWebhookDropsItsPendingDeliveriesAndStopsThem() async throws {
        try await withWebhookHarness { h, receiver in
            let (key, id, _) = try await h.connectedWithWebhook(url: receiver.url)
            receiver.always(.status(503))
            try await h.breakConnection(key: key)
            #expect(await eventually(within: 5) { receiver.received.count >= 1 })
            #expect(try await h.rows("webhook_deliveries") == 1)
            #expect(try await h.call("DELETE", "/tenants/acme/webhooks/\(id)").status == 204)
            #expect(try await h.rows("webhook_deliveries") == 0)
            let attempts = receiver.received.count
            receiver.always(nil)
            try await Task.sleep(for: .seconds(3))
            #expect(receiver.received.count == attempts)
            #expect(try await h.call("GET", "/tenants/acme/webhooks").json?["webhooks"] == .array([]))
            #expect(try await h.call("DELETE", "/tenants/acme/webhooks/\(id)").status == 404)
        }
    }
}
