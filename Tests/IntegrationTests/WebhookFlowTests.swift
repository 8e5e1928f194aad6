import FakeSalesforce
import Foundation
import TestSupport
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// Events from the token path to a real receiver on 127.0.0.1: signed, on time, retried, in order, kept across a
/// restart, only to the tenant's own webhooks, and never holding up a request.
@Suite struct WebhookFlowTests {
    @Test func reauthorizationAndRecoveryArriveSignedWithinSecondsAndOnlyOnChange() async throws {
        try await withWebhookHarness { h, receiver in
            let (key, _, secret) = try await h.connectedWithWebhook(url: receiver.url)

            let broke = ContinuousClock.now
            try await h.breakConnection(key: key)
            #expect(await eventually(within: 5) { !receiver.events("connection.reauthorization_required").isEmpty })
            let reauth = try #require(receiver.events("connection.reauthorization_required").first)
            #expect(reauth.at - broke < .seconds(3), "arrived after \(reauth.at - broke)")
            #expect(WebhookReceiver.verifies(reauth, secret: secret))
            #expect(reauth.contentType == "application/json")
            let body = try #require(reauth.json)
            #expect(body["id"]?.stringValue == reauth.id && reauth.id?.hasPrefix("evt_") == true)
            #expect(body["tenant"] == .string("acme") && body["client"] == .string("crm"))
            #expect(body["connection"] == .string("default"))
            #expect(body["error"]?["error"] == .string("reauthorization_required"))
            #expect(body["error"]?["upstream"]?["error"] == .string("invalid_grant"))
            #expect(body["error"]?["message"]?.stringValue?.isEmpty == false)
            #expect(body["at"]?.stringValue?.hasSuffix("Z") == true)

            // Still broken: more failures are no new transition, so no new event.
            #expect(try await h.token(key: key, extra: #","min_ttl_seconds":86400"#).status == 409)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(receiver.events("connection.reauthorization_required").count == 1)

            #expect(try await h.exchange(key: key).status == 200)
            #expect(await eventually(within: 5) { !receiver.events("connection.recovered").isEmpty })
            let recovered = try #require(receiver.events("connection.recovered").first)
            #expect(WebhookReceiver.verifies(recovered, secret: secret))
            #expect(recovered.json?["error"] == .null && recovered.json?["connection"] == .string("default"))
            #expect(recovered.id != reauth.id)

            // A forged signature is not accepted by the same check: the check can fail.
            var forged = recovered
            forged.body = forged.body.replacingOccurrences(of: "default", with: "other")
            #expect(!WebhookReceiver.verifies(forged, secret: secret))

            let listed = try await h.call("GET", "/tenants/acme/webhooks")
            let last = listed.json?["webhooks"]?.arrayValue?.first?["last_delivery"]
            #expect(last?["status"] == .number(204) && last?["error"] == .null, "\(listed.text)")
            #expect(!listed.text.contains(secret) && listed.json?["webhooks"]?.arrayValue?.first?["secret"] == nil)
            let metrics = try await h.call("GET", "/metrics", token: nil).text
            #expect(metrics.contains(#"token_gateway_webhook_deliveries_total{outcome="delivered"} 2"#), "\(metrics)")
        }
    }

    @Test func aJWTGrantThatWorksAgainRaisesRecovered() async throws {
        try await withWebhookHarness { h, receiver in
            let key = try await h.tenantWithKey()
            try await h.clientCredentialsClient(runAs: "runner@acme.example")
            #expect(try await h.webhook(url: receiver.url).status == 201)
            #expect(try await h.token(key: key, client: "cc").status == 200)
            h.fake.setUserActive("runner@acme.example", false)
            let refused = try await h.token(key: key, client: "cc", extra: #","min_ttl_seconds":86400"#)
            #expect(refused["error"] == "reauthorization_required", "\(refused.text)")
            // Such a grant is tried again on each request: failing again while already marked is no new event.
            let again = try await h.token(key: key, client: "cc", extra: #","min_ttl_seconds":86400"#)
            #expect(again["error"] == "reauthorization_required", "\(again.text)")
            #expect(await eventually(within: 5) { receiver.events("connection.reauthorization_required").count == 1 })
            h.fake.setUserActive("runner@acme.example", true)
            #expect(try await h.token(key: key, client: "cc", extra: #","min_ttl_seconds":86400"#).status == 200)
            #expect(await eventually(within: 5) { receiver.events("connection.recovered").count == 1 })
            #expect(receiver.events("connection.reauthorization_required").count == 1)
            #expect(receiver.events("connection.recovered").first?.json?["client"] == .string("cc"))
        }
    }

    @Test func anotherTenantsWebhookGetsNothing() async throws {
        try await withReceiver { other in
            try await Self.anotherTenantsWebhookGetsNothing(other)
        }
    }

    static func anotherTenantsWebhookGetsNothing(_ other: WebhookReceiver) async throws {
        try await withWebhookHarness(extra: ["TOKEN_GATEWAY_WEBHOOK_ALLOWLIST": "http://127.0.0.1"]) { h, receiver in
            let key = try await h.tenantWithKey("acme")
            _ = try await h.tenantWithKey("globex")
            try await h.authorizationCodeClient()
            #expect(try await h.exchange(key: key).status == 200)
            #expect(try await h.webhook(tenant: "acme", url: receiver.url).status == 201)
            #expect(try await h.webhook(tenant: "globex", url: other.url).status == 201)
            try await h.breakConnection(key: key)
            #expect(await eventually(within: 5) { receiver.received.count == 1 })
            try await Task.sleep(for: .seconds(2))
            #expect(other.received.isEmpty)
            #expect(receiver.received.count == 1)
        }
    }

    @Test func failedAnswersAreRetriedWithTheSameIDTheFirstRetryWithinFiveSeconds() async throws {
        try await withWebhookHarness { h, receiver in
            let (key, _, secret) = try await h.connectedWithWebhook(url: receiver.url)
            receiver.script([.status(500), .status(503)])
            try await h.breakConnection(key: key)
            #expect(await eventually(within: 15) { receiver.received.count == 3 })
            let attempts = receiver.received
            #expect(Set(attempts.map(\.id)).count == 1 && attempts[0].id != nil)
            #expect(attempts.allSatisfy { WebhookReceiver.verifies($0, secret: secret) })
            #expect(
                attempts[1].at - attempts[0].at < .seconds(5), "first retry after \(attempts[1].at - attempts[0].at)")
            #expect(attempts[2].at - attempts[1].at > attempts[1].at - attempts[0].at, "delays grow")
            #expect(
                await eventually(within: 2) {
                    (try? await h.call("GET", "/tenants/acme/webhooks"))?.json?["webhooks"]?.arrayValue?.first?[
                        "last_delivery"]?["status"] == .number(204)
                })
            try await Task.sleep(for: .milliseconds(1500))
            #expect(receiver.received.count == 3, "delivered once it got a 2xx")
            let metrics = try await h.call("GET", "/metrics", token: nil).text
            #expect(metrics.contains(#"token_gateway_webhook_deliveries_total{outcome="failed"} 2"#))
        }
    }

    @Test func eventsOfOneConnectionArriveInOrderBehindRetries() async throws {
        try await withWebhookHarness { h, receiver in
            let (key, _, _) = try await h.connectedWithWebhook(url: receiver.url)
            receiver.always(.status(503))
            try await h.breakConnection(key: key)
            #expect(await eventually(within: 5) { receiver.received.count >= 1 })
            #expect(try await h.exchange(key: key).status == 200)  // recovered, queued behind the failing event
            try await Task.sleep(for: .seconds(3))
            #expect(receiver.events("connection.recovered").isEmpty, "the later event waits for the earlier one")
            receiver.always(nil)
            #expect(await eventually(within: 15) { receiver.events("connection.recovered").count == 1 })
            let types = receiver.received.map { $0.type ?? "" }
            let firstRecovered = try #require(types.firstIndex(of: "connection.recovered"))
            #expect(types[..<firstRecovered].allSatisfy { $0 == "connection.reauthorization_required" })
            #expect(firstRecovered >= 2)
        }
    }

    @Test func aPendingEventIsDeliveredByTheNextStartAfterEveryReplicaStopped() async throws {
        try await withReceiver { try await Self.aPendingEventIsDeliveredByTheNextStartAfterEveryReplicaStopped($0) }
    }

    static func aPendingEventIsDeliveredByTheNextStartAfterEveryReplicaStopped(_ receiver: WebhookReceiver)
        async throws
    {
        let settings = ["TOKEN_GATEWAY_WEBHOOK_ALLOWLIST": receiver.allowPattern]
        let first = try await GatewayHarness.start(extra: settings)
        let (key, _, _) = try await first.connectedWithWebhook(url: receiver.url)
        receiver.always(.status(503))
        try await first.breakConnection(key: key)
        #expect(await eventually(within: 5) { receiver.received.count >= 1 })
        #expect(
            await eventually(within: 8) {
                (try? await first.call("GET", "/metrics", token: nil))?.text.contains(
                    "token_gateway_webhook_events_pending 1.0") == true
            })
        await first.stop(stopFake: false)
        let attemptsBefore = receiver.received.count
        let pendingID = receiver.received.last?.id
        receiver.always(nil)
        #expect(try await first.rows("webhook_deliveries") == 1)

        let second = try await GatewayHarness.start(
            databaseURL: first.databaseURL, keys: first.keysSetting, fake: first.fake, extra: settings)
        #expect(await eventually(within: 10) { receiver.received.count == attemptsBefore + 1 })
        #expect(receiver.received.last?.id == pendingID)
        #expect(await eventually(within: 2) { (try? await second.rows("webhook_deliveries")) == 0 })
        await second.stop()
    }

    @Test func clientRejectedArrivesOnceAnHourAfterSalesforceRefusesARotatedSecret() async throws {
        try await withWebhookHarness { h, receiver in
            let (key, _, _) = try await h.connectedWithWebhook(url: receiver.url, events: ["client.rejected"])
            // Someone rotates the connected app's secret in Salesforce; the gateway still has the old one.
            h.fake.register(
                FakeConnectedApp(
                    clientID: "3MVG9-crm", clientSecret: "rotated-in-salesforce",
                    redirectURIs: [GatewayHarness.redirect]))
            let refused = try await h.token(key: key, extra: #","min_ttl_seconds":86400"#)
            #expect(refused["error"] == "client_rejected", "\(refused.text)")
            #expect(await eventually(within: 5) { receiver.received.count == 1 })
            let event = try #require(receiver.received.first?.json)
            #expect(event["type"] == .string("client.rejected") && event["client"] == .string("crm"))
            #expect(event["error"]?["error"] == .string("client_rejected"))
            #expect(event["error"]?["upstream"]?["error"] == .string("invalid_client"))

            // Within the hour: neither a refresh nor an /exchange raises another.
            #expect(try await h.token(key: key, extra: #","min_ttl_seconds":86400"#)["error"] == "client_rejected")
            #expect(try await h.exchange(key: key)["error"] == "client_rejected")
            try await Task.sleep(for: .milliseconds(1500))
            #expect(receiver.received.count == 1)

            // An hour later, a refusal on /exchange (no refresh transaction) raises it again.
            _ = try await onThread {
                try TemporaryPostgres.psql(
                    url: h.databaseURL, "UPDATE client_rejections SET raised_at = now() - interval '61 minutes'")
            }
            #expect(try await h.exchange(key: key)["error"] == "client_rejected")
            #expect(await eventually(within: 5) { receiver.received.count == 2 })
            #expect(receiver.received.last?.json?["type"] == .string("client.rejected"))
        }
    }

    @Test func aHangingReceiverDelaysNoOtherWebhookAndNoRequest() async throws {
        try await withReceiver { healthy in try await Self.aHangingReceiverDelaysNoOtherWebhookAndNoRequest(healthy) }
    }

    static func aHangingReceiverDelaysNoOtherWebhookAndNoRequest(_ healthy: WebhookReceiver) async throws {
        try await withWebhookHarness(extra: ["TOKEN_GATEWAY_WEBHOOK_ALLOWLIST": "http://127.0.0.1"]) { h, hanging in
            let key = try await h.tenantWithKey()
            try await h.authorizationCodeClient()
            // More deliveries to the hanging receiver than this replica has slots (8).
            let connections = (0..<10).map { "c\($0)" }
            for connection in connections {
                #expect(try await h.exchange(key: key, connection: connection).status == 200)
            }
            hanging.always(.hang(.seconds(30)))
            #expect(try await h.webhook(url: hanging.url).status == 201)
            #expect(try await h.webhook(url: healthy.url).status == 201)
            h.fake.revokeAll(username: "ops@acme.example")
            let started = ContinuousClock.now
            for connection in connections {
                let before = ContinuousClock.now
                let refused = try await h.token(key: key, connection: connection, extra: #","min_ttl_seconds":86400"#)
                #expect(refused["error"] == "reauthorization_required")
                #expect(ContinuousClock.now - before < .seconds(1), "a request waited for a webhook")
            }
            #expect(await eventually(within: 5) { healthy.received.count == 10 })
            #expect(ContinuousClock.now - started < .seconds(6))
            #expect(hanging.received.count <= 2, "at most two attempts at once to one webhook")
            #expect(Set(healthy.received.compactMap { $0.json?["connection"]?.stringValue }) == Set(connections))
        }
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
