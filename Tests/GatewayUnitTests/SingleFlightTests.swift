import Foundation
import Synchronization
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

/// The in-process coalescing rules, with the work as a closure (no database, no Salesforce).
@Suite struct SingleFlightTests {
    static let key = ConnectionKey(tenant: "acme", client: "crm", connection: "default")

    /// Records which keys were charged and hands out tokens fetched at the moment the work runs.
    final class Recorder: Sendable {
        let calls = Mutex<[String]>([])
        let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let clock = Mutex(1000.0)

        var now: Double { clock.withLock { $0 } }
        var charged: [String] { calls.withLock { $0 } }
        func advance(_ seconds: Double) { clock.withLock { $0 += seconds } }

        /// A work that waits until `release()`, then returns a token fetched `age` seconds before now.
        func work(age: Double = 0, failWith error: GatewayError? = nil) -> SingleFlight.Work {
            { [self] _, keyID in
                calls.withLock { $0.append(keyID) }
                await withCheckedContinuation { continuation in gate.withLock { $0 = continuation } }
                if let error { throw error }
                let fetched = now - age
                return (
                    CachedToken(
                        accessToken: "t\(keyID)", instanceURL: "", identityURL: "", scope: nil, tokenType: "Bearer",
                        issuedAt: fetched, expiresAt: fetched + 3600, fetchedAt: fetched),
                    age == 0
                )
            }
        }

        func release() async {
            for _ in 0..<200 {
                if let continuation = gate.withLock({ value -> CheckedContinuation<Void, Never>? in
                    defer { value = nil }
                    return value
                }) {
                    continuation.resume()
                    return
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
            Issue.record("the work never started")
        }
    }

    typealias Run = Task<(CachedToken, IssuedToken.Source), any Error>

    /// Starts a leader (key A) and, once its work runs, a follower (key B) for the same connection.
    static func race(
        _ flight: SingleFlight, _ recorder: Recorder, leader: (TokenNeed, SingleFlight.Work),
        follower: (TokenNeed, SingleFlight.Work)
    ) async throws -> (Run, Run) {
        let first = Task {
            try await flight.run(key, need: leader.0, keyID: "A", now: { recorder.now }, work: leader.1)
        }
        try await Task.sleep(for: .milliseconds(30))
        let second = Task {
            try await flight.run(key, need: follower.0, keyID: "B", now: { recorder.now }, work: follower.1)
        }
        try await Task.sleep(for: .milliseconds(30))
        return (first, second)
    }

    func need(_ recorder: Recorder, minTTL: Double = 60, force: Bool = false) -> TokenNeed {
        TokenNeed(minTTL: minTTL, force: force, started: recorder.now, forceGrace: 5)
    }

    @Test func followersTakeTheLeadersFreshTokenAsCache() async throws {
        let flight = SingleFlight()
        let recorder = Recorder()
        let work = recorder.work()
        let (leader, follower) = try await Self.race(
            flight, recorder, leader: (need(recorder), work),
            follower: (need(recorder), work))
        await recorder.release()
        let (leaderToken, leaderSource) = try await leader.value
        let (followerToken, followerSource) = try await follower.value
        #expect(leaderSource == .upstream && followerSource == .cache)
        #expect(leaderToken == followerToken)
        #expect(recorder.charged == ["A"])
    }

    @Test func aForcingFollowerRejectsAnOldStoredTokenAndGetsItsOwn() async throws {
        let flight = SingleFlight()
        let recorder = Recorder()
        // The leader is satisfied by a stored token fetched 30 s ago (older than the 5 s grace).
        let forcing = need(recorder, force: true)
        let (leader, follower) = try await Self.race(
            flight, recorder, leader: (need(recorder), recorder.work(age: 30)),
            follower: (forcing, recorder.work()))
        await recorder.release()
        let (old, _) = try await leader.value
        await recorder.release()
        let (own, source) = try await follower.value
        #expect(own != old, "the follower did not get the token it was told to replace")
        #expect(source == .upstream)
        #expect(recorder.charged == ["A", "B"], "the follower's own key paid for its own call")
    }

    @Test func aFollowerNeedingMoreTTLThanTheLeadersTokenHasGoesOn() async throws {
        let flight = SingleFlight()
        let recorder = Recorder()
        // A token fetched 3000 s ago has 600 s left: enough for min_ttl 60, not for 900.
        let (leader, follower) = try await Self.race(
            flight, recorder, leader: (need(recorder), recorder.work(age: 3000)),
            follower: (need(recorder, minTTL: 900), recorder.work()))
        await recorder.release()
        _ = try await leader.value
        await recorder.release()
        let (token, _) = try await follower.value
        #expect(token.remaining(now: recorder.now) > 900)
    }

    @Test func aLeaderRefusedForItsKeysLimitDoesNotRefuseTheFollower() async throws {
        let flight = SingleFlight()
        let recorder = Recorder()
        let limited = GatewayError(.rateLimited, message: "A is limited", retryAfterSeconds: 3)
        let (leader, follower) = try await Self.race(
            flight, recorder, leader: (need(recorder), recorder.work(failWith: limited)),
            follower: (need(recorder), recorder.work()))
        await recorder.release()
        await #expect(throws: GatewayError.self) { try await leader.value }
        await recorder.release()
        let (_, source) = try await follower.value
        #expect(source == .upstream)
        #expect(recorder.charged == ["A", "B"])
    }

    @Test func otherLeaderFailuresAreSharedWithFollowers() async throws {
        let flight = SingleFlight()
        let recorder = Recorder()
        let dead = GatewayError(.reauthorizationRequired, message: "dead")
        let work = recorder.work(failWith: dead)
        let (leader, follower) = try await Self.race(
            flight, recorder, leader: (need(recorder), work),
            follower: (need(recorder), work))
        await recorder.release()
        await #expect(throws: GatewayError.self) { try await leader.value }
        await #expect(throws: GatewayError.self) { try await follower.value }
        #expect(recorder.charged == ["A"])
    }
}
