import Foundation
import Synchronization
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct GatewayNotificationTests {
    @Test func everyMessageSurvivesARoundTrip() {
        let messages: [GatewayNotification] = [
            .keyDeleted(id: "0123456789abcdef"),
            .tenantDeleted(tenant: "acme"),
            .tokensStale(tenant: "acme", client: "crm", connection: nil),
            .tokensStale(tenant: "acme", client: "crm", connection: "eu"),
            .leaseEnded(
                ConnectionKey(tenant: "acme", client: "crm", connection: "default"), origin: "ab12cd34", forced: true),
            .webhookPending,
        ]
        for message in messages {
            #expect(GatewayNotification(payload: message.payload) == message, "\(message.payload)")
        }
    }

    @Test func namesWithQuotesAndSlashesAreKeptWhole() {
        let message = GatewayNotification.tokensStale(tenant: "a/b", client: "c\"d|e", connection: "f/g")
        #expect(GatewayNotification(payload: message.payload) == message)
    }

    @Test func malformedOrUnknownPayloadsAreRefused() {
        for payload in [
            "", "key:abc", "|acme/crm/", "{}", #"{"type":"nope"}"#, #"{"type":"key_deleted"}"#,
            #"{"type":"lease_ended","tenant":"a","client":"b","connection":"c","origin":"o"}"#,
            #"{"type":"tokens_stale","tenant":"a"}"#, "[1,2]",
        ] {
            #expect(GatewayNotification(payload: payload) == nil, "\(payload)")
        }
    }
}
