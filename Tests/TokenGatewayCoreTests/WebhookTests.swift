import Foundation
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct WebhookDeliveryTests {
    @Test func retriesStartWithinFiveSecondsThenDoubleUpToTenMinutes() {
        let delays = (1...12).map { WebhookDelivery.retryDelay(afterAttempt: $0) }
        #expect(delays == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600])
        #expect(WebhookDelivery.retryDelay(afterAttempt: 1_000) == 600)
    }

    @Test func aDeliveryIsClaimedOnceAndDeliveredOnA2xx() {
        var delivery = WebhookDelivery(createdAt: 100)
        #expect(!delivery.isClaimable(now: 99))
        let claimed = delivery.claim(owner: "a", now: 100)
        #expect(claimed && delivery.state == .inFlight(owner: "a", until: 115))
        let claimedAgain = delivery.claim(owner: "b", now: 101)
        #expect(!claimedAgain, "a claim in flight is not taken before it lapses")
        let action = delivery.finish(owner: "a", outcome: .answered(status: 204), now: 101)
        #expect(action == .delivered && delivery.state == .delivered(at: 101))
        #expect(!delivery.isClaimable(now: 1e9))
        #expect(delivery.attempts == 1)
    }

    @Test func non2xxAndNoAnswerAreRetriedWithGrowingDelays() {
        var delivery = WebhookDelivery(createdAt: 0)
        var actions: [WebhookDelivery.Action] = []
        var claims: [Bool] = []
        claims.append(delivery.claim(owner: "a", now: 0))
        actions.append(delivery.finish(owner: "a", outcome: .answered(status: 500), now: 1))
        #expect(delivery.state == .pending(due: 3))
        #expect(!delivery.isClaimable(now: 2.9))
        claims.append(delivery.claim(owner: "b", now: 3))
        actions.append(delivery.finish(owner: "b", outcome: .noAnswer(reason: "timeout"), now: 13))
        claims.append(delivery.claim(owner: "c", now: 17))
        actions.append(delivery.finish(owner: "c", outcome: .answered(status: 302), now: 17))
        #expect(claims == [true, true, true])
        #expect(actions == [.retry(inSeconds: 2), .retry(inSeconds: 4), .retry(inSeconds: 8)])
        #expect(delivery.attempts == 3)
    }

    @Test func aLapsedClaimIsTakenOverAndTheOldOwnersAnswerChangesNothing() {
        var delivery = WebhookDelivery(createdAt: 0)
        let first = delivery.claim(owner: "dead", now: 0)
        #expect(first && !delivery.isClaimable(now: 14.9))
        let takeover = delivery.claim(owner: "alive", now: 15)
        #expect(takeover)
        let late = delivery.finish(owner: "dead", outcome: .answered(status: 200), now: 16)
        #expect(late == .ignore && delivery.state == .inFlight(owner: "alive", until: 30))
        let done = delivery.finish(owner: "alive", outcome: .answered(status: 200), now: 16)
        let again = delivery.finish(owner: "alive", outcome: .answered(status: 200), now: 17)
        #expect(done == .delivered && again == .ignore)
    }

    @Test func aReceiverThatNeverAnswersIsGivenUpAfterTwentyFourHours() {
        var delivery = WebhookDelivery(createdAt: 0)
        var now = 0.0
        var gaps: [Double] = []
        var last: WebhookDelivery.Action = .ignore
        while delivery.claim(owner: "o\(delivery.attempts)", now: now) {
            now += 10  // every attempt times out
            last = delivery.finish(owner: "o\(delivery.attempts - 1)", outcome: .noAnswer(reason: "t"), now: now)
            guard case .retry(let seconds) = last else { break }
            gaps.append(seconds)
            now += seconds
        }
        #expect(last == .giveUp)
        #expect(delivery.state == .gaveUp(at: now))
        #expect(now <= WebhookDelivery.giveUpAfter && now > WebhookDelivery.giveUpAfter - 610)
        #expect(gaps.first == 2 && gaps.max() == 600)
        #expect(delivery.attempts > 140 && delivery.attempts < 160, "\(delivery.attempts) attempts in a day")
    }

    @Test func errorTextSaysWhatTheReceiverDid() {
        #expect(WebhookDelivery.errorText(.answered(status: 200)) == nil)
        #expect(WebhookDelivery.errorText(.answered(status: 503)) == "the receiver answered HTTP 503")
        #expect(WebhookDelivery.errorText(.noAnswer(reason: "no answer within 10 s")) == "no answer within 10 s")
    }
}

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

@Suite struct WebhookValidationTests {
    func body(_ json: String) throws -> RequestBody {
        guard case .object(let members) = try JSONValue.parse(Array(json.utf8)) else { throw GatewayError.unauthorized }
        return RequestBody(members: members)
    }

    func refusal(_ json: String, allowList: UpstreamAllowList? = nil) throws -> String? {
        do {
            _ = try WebhookValidation.create(body: try body(json), allowList: allowList)
            return nil
        } catch let error as GatewayError {
            #expect(error.code.rawValue == "invalid_request")
            return error.message
        }
    }

    @Test func withoutAnAllowListOnlyHTTPSOnADNSNameIsAccepted() throws {
        let ok = try WebhookValidation.create(
            body: try body(#"{"url":"https://ops.example.com/hooks/tgw?x=1"}"#), allowList: nil)
        #expect(ok.url == "https://ops.example.com/hooks/tgw?x=1")
        #expect(ok.events == WebhookEventType.allCases)
        for url in [
            "http://ops.example.com/h", "https://127.0.0.1/h", "https://[::1]/h", "https://localhost/h",
            "https://a.localhost/h", "https://10.0.0.8:8443/h", "ftp://ops.example.com/h",
        ] {
            let message = try refusal(#"{"url":"\#(url)"}"#)
            #expect(message?.hasPrefix("url: ") == true, "\(url): \(message ?? "accepted")")
        }
        #expect(try refusal(#"{"url":"https://user:pw@ops.example.com/h"}"#)?.contains("user name") == true)
        #expect(try refusal(#"{"url":"https://ops.example.com/h#frag"}"#)?.hasPrefix("url: ") == true)
    }

    @Test func anAllowListReplacesTheDefaultRule() throws {
        let list = try UpstreamAllowList(parsing: "http://127.0.0.1:9000,https://*.ops.example.com")
        #expect(try refusal(#"{"url":"http://127.0.0.1:9000/hook"}"#, allowList: list) == nil)
        #expect(try refusal(#"{"url":"https://a.ops.example.com/hook"}"#, allowList: list) == nil)
        let other = try refusal(#"{"url":"https://ops.example.com/hook"}"#, allowList: list)
        #expect(other?.contains("not in TOKEN_GATEWAY_WEBHOOK_ALLOWLIST") == true)
        #expect(try refusal(#"{"url":"http://127.0.0.1:9001/hook"}"#, allowList: list) != nil)
    }

    @Test func eventsMustBeANonEmptyListOfKnownNames() throws {
        let url = #""url":"https://ops.example.com/h""#
        #expect(try refusal("{\(url),\"events\":[]}")?.hasPrefix("events: must name at least one") == true)
        #expect(try refusal("{\(url),\"events\":[\"connection.deleted\"]}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"events\":\"client.rejected\"}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"events\":null}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"events\":[1]}")?.hasPrefix("events: ") == true)
        #expect(try refusal("{\(url),\"secret\":\"whsec_x\"}") == "secret: unknown field.")
        #expect(try refusal(#"{"events":["client.rejected"]}"#) == "url: is required.")
        let some = try WebhookValidation.create(
            body: try body("{\(url),\"events\":[\"client.rejected\",\"connection.recovered\",\"client.rejected\"]}"),
            allowList: nil)
        #expect(some.events == [.recovered, .clientRejected])
    }

    @Test func webhookIDsHaveOneShape() {
        #expect(WebhookValidation.isWebhookID("wh_0123456789abcdef"))
        #expect(!WebhookValidation.isWebhookID("wh_0123456789ABCDEF"))
        #expect(!WebhookValidation.isWebhookID("wh_0123456789abcde"))
        #expect(!WebhookValidation.isWebhookID("xx_0123456789abcdef"))
    }
}
