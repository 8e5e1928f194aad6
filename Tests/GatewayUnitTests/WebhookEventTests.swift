import Foundation
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct WebhookEventTests {
    @Test func statusEventsAreRaisedOnlyWhenTheStatusChanges() {
        let reauth = GatewayError(.reauthorizationRequired, message: "m")
        let rejected = GatewayError(.clientRejected, message: "m")
        let timeout = GatewayError(.upstreamTimeout, message: "m")
        typealias E = WebhookEventType
        #expect(
            E.raised(before: "active", after: "reauthorization_required", failure: reauth) == [.reauthorizationRequired]
        )
        #expect(E.raised(before: "reauthorization_required", after: "reauthorization_required", failure: reauth) == [])
        #expect(E.raised(before: "reauthorization_required", after: "active", failure: nil) == [.recovered])
        #expect(E.raised(before: "active", after: "active", failure: nil) == [])
        #expect(E.raised(before: nil, after: "active", failure: nil) == [], "a new connection recovers from nothing")
        #expect(E.raised(before: "active", after: "active", failure: timeout) == [])
        #expect(E.raised(before: "active", after: "active", failure: rejected) == [.clientRejected])
        #expect(E.raised(before: nil, after: nil, failure: rejected) == [.clientRejected])
    }

    @Test func theBodyCarriesTenantClientConnectionAndError() throws {
        let failure = GatewayError(
            .reauthorizationRequired, message: "Salesforce no longer accepts it.",
            upstream: UpstreamDetails(status: 400, error: "invalid_grant", errorDescription: "expired"))
        let event = WebhookEvent(
            type: .reauthorizationRequired, connection: ConnectionKey(tenant: "acme", client: "crm", connection: "eu"),
            error: failure, at: 1_764_400_000)
        #expect(event.id.hasPrefix("evt_") && event.id.count == 28)
        let body = try JSONValue.parse(Array(event.body.utf8))
        #expect(body["id"]?.stringValue == event.id)
        #expect(body["type"]?.stringValue == "connection.reauthorization_required")
        #expect(body["at"]?.stringValue == "2025-11-29T07:06:40Z")
        #expect(body["tenant"]?.stringValue == "acme" && body["client"]?.stringValue == "crm")
        #expect(body["connection"]?.stringValue == "eu")
        #expect(body["error"]?["error"]?.stringValue == "reauthorization_required")
        #expect(body["error"]?["message"]?.stringValue == "Salesforce no longer accepts it.")
        #expect(body["error"]?["upstream"]?["error"]?.stringValue == "invalid_grant")
        #expect(event.stream == "acme/crm/eu")

        let recovered = WebhookEvent(
            type: .recovered, connection: ConnectionKey(tenant: "acme", client: "crm", connection: "eu"), error: nil,
            at: 0)
        #expect(try JSONValue.parse(Array(recovered.body.utf8))["error"] == .null)
        #expect(recovered.id != event.id)
    }

    @Test func signaturesMatchTheStandardWebhooksReferenceVector() {
        // The reference libraries' test vector (standard-webhooks, "webhook.test"): secret, id, timestamp, body.
        let signature = WebhookSecret.signature(
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: 1_614_265_330, body: #"{"test": 2432232314}"#)
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(
            WebhookSecret.signature(secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "i", timestamp: 1, body: "") == nil)
    }

    @Test func secretsAreWhsecAndThirtyTwoRandomBytes() throws {
        let first = WebhookSecret.generate()
        #expect(first.hasPrefix("whsec_"))
        #expect(try #require(Data(base64Encoded: String(first.dropFirst(6)))).count == 32)
        #expect(first != WebhookSecret.generate())
    }
}
