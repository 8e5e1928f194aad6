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
