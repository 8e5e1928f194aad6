import Foundation
import Synchronization
import Testing

@testable import Codecs
@testable import TokenGatewayAPI
@testable import TokenGatewayDomain
@testable import TokenGatewayService
@testable import TokenGatewayStore
@testable import token_gateway

@Suite struct UpstreamGateTests {
    static let key = ConnectionKey(tenant: "acme", client: "crm", connection: "default")

    // MARK: ClientBackoff transitions

    @Test func answersKeepTheBreakerClosed() {
        var backoff = ClientBackoff()
        for _ in 0..<10 {
            let r1 = backoff.admit(now: 0)
            #expect(r1 == nil)
            backoff.record(.answered, now: 0)
        }
        #expect(backoff.state == .closed(consecutiveTimeouts: 0))
    }

    @Test func consecutiveTimeoutsOpenTheBreakerAndAnAnswerResetsTheCount() {
        var backoff = ClientBackoff()
        backoff.record(.timedOut, now: 0)
        backoff.record(.timedOut, now: 0)
        backoff.record(.answered, now: 0)
        backoff.record(.timedOut, now: 0)
        #expect(backoff.state == .closed(consecutiveTimeouts: 1))
        backoff.record(.timedOut, now: 1)
        backoff.record(.timedOut, now: 2)
        #expect(backoff.state == .open(until: 2 + ClientBackoff.firstPeriod, period: ClientBackoff.firstPeriod))
        let r2 = backoff.admit(now: 3)
        #expect(r2 == Int(ClientBackoff.firstPeriod) - 1, "Retry-After counts down")
    }

    @Test func afterThePeriodOneProbeGoesThroughAndItsTimeoutDoublesThePeriod() {
        var backoff = ClientBackoff()
        for _ in 0..<ClientBackoff.threshold { backoff.record(.timedOut, now: 0) }
        let reopen = ClientBackoff.firstPeriod
        let r3 = backoff.admit(now: reopen)
        #expect(r3 == nil, "the probe")
        let r4 = backoff.admit(now: reopen)
        #expect(r4 == 1, "only one probe at a time")
        backoff.record(.timedOut, now: reopen)
        #expect(backoff.state == .open(until: reopen * 3, period: reopen * 2))
    }

    @Test func aProbeThatAnswersClosesTheBreaker() {
        var backoff = ClientBackoff()
        for _ in 0..<ClientBackoff.threshold { backoff.record(.timedOut, now: 0) }
        let r5 = backoff.admit(now: 100)
        #expect(r5 == nil)
        backoff.record(.answered, now: 101)
        #expect(backoff.state == .closed(consecutiveTimeouts: 0))
    }

    @Test func anAbandonedProbeLetsTheNextRequestProbe() {
        var backoff = ClientBackoff()
        for _ in 0..<ClientBackoff.threshold { backoff.record(.timedOut, now: 0) }
        let r6 = backoff.admit(now: 100)
        #expect(r6 == nil)
        backoff.record(.abandoned, now: 100)
        let r7 = backoff.admit(now: 100)
        #expect(r7 == nil)
    }

    @Test func theBackOffPeriodIsBounded() {
        var backoff = ClientBackoff()
        for _ in 0..<ClientBackoff.threshold { backoff.record(.timedOut, now: 0) }
        var now = 0.0
        for _ in 0..<20 {
            if case .open(let until, _) = backoff.state { now = until }
            _ = backoff.admit(now: now)
            backoff.record(.timedOut, now: now)
        }
        guard case .open(_, let period) = backoff.state else {
            Issue.record("expected open")
            return
        }
        #expect(period == ClientBackoff.maxPeriod)
    }

    // MARK: UpstreamGate slots

    @Test func aLookAtTheBreakerChangesNothing() {
        let gate = UpstreamGate(perClient: 2)
        #expect(!gate.isBackedOff(Self.key, now: 0))
        for _ in 0..<ClientBackoff.threshold { gate.record(Self.key, .timedOut, now: 0) }
        #expect(gate.isBackedOff(Self.key, now: 1))
        #expect(!gate.isBackedOff(Self.key, now: ClientBackoff.firstPeriod), "lapsed: the next call may probe")
        #expect(gate.admit(Self.key, now: ClientBackoff.firstPeriod) == nil, "the probe was not taken by the look")
    }

    @Test func slotsAreBoundedPerClientAndHandedToTheLongestWaiter() async {
        let gate = UpstreamGate(perClient: 2)
        let far = ContinuousClock.now + .seconds(5)
        #expect(await gate.acquire(Self.key, deadline: far))
        #expect(await gate.acquire(Self.key, deadline: far))
        let other = ConnectionKey(tenant: "acme", client: "other", connection: "default")
        #expect(await gate.acquire(other, deadline: ContinuousClock.now), "another client has its own slots")
        let third = Task { await gate.acquire(Self.key, deadline: far) }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(gate.inUse(Self.key) == 2)
        gate.release(Self.key)
        #expect(await third.value)
        #expect(gate.inUse(Self.key) == 2, "the slot went to the waiter")
    }

    @Test func aWaiterGivesUpAtItsDeadline() async {
        let gate = UpstreamGate(perClient: 1)
        #expect(await gate.acquire(Self.key, deadline: ContinuousClock.now + .seconds(5)))
        let started = ContinuousClock.now
        #expect(!(await gate.acquire(Self.key, deadline: started + .milliseconds(100))))
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(100) && waited < .seconds(2))
        gate.release(Self.key)
        #expect(gate.inUse(Self.key) == 0)
    }

    // MARK: LeaseWaiters

    @Test func aWakeBetweenTicketAndWaitIsNotMissed() async {
        let waiters = LeaseWaiters()
        let ticket = waiters.ticket(Self.key)
        waiters.wake(Self.key)
        let started = ContinuousClock.now
        await waiters.wait(Self.key, after: ticket, timeout: .seconds(5))
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test func aWaitEndsOnWakeOrAtItsTimeout() async {
        let waiters = LeaseWaiters()
        let started = ContinuousClock.now
        await waiters.wait(Self.key, after: waiters.ticket(Self.key), timeout: .milliseconds(100))
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        let ticket = waiters.ticket(Self.key)
        let woken = Task { await waiters.wait(Self.key, after: ticket, timeout: .seconds(10)) }
        try? await Task.sleep(for: .milliseconds(50))
        let wakeAt = ContinuousClock.now
        waiters.wake(Self.key)
        await woken.value
        #expect(ContinuousClock.now - wakeAt < .seconds(1))
    }
}
