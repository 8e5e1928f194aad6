import Codecs
import Foundation
import Synchronization

/// Backs off a client whose Salesforce calls keep timing out, so one sick org cannot use up a replica's upstream
/// capacity. A value type: the gate keeps one per client and feeds it every call's outcome.
///
/// Closed (calls go through) → after `threshold` consecutive timeouts, open for `firstPeriod` seconds (calls are
/// refused at once) → then one probe call goes through: an answer closes it, another timeout opens it again for
/// twice as long (at most `maxPeriod`). Any answer from Salesforce, even a refusal, proves the org answers.
public struct ClientBackoff: Sendable, Equatable {
    /// Consecutive timeouts that open the breaker.
    public static let threshold = 3
    /// The first back-off period, in seconds.
    public static let firstPeriod = 15.0
    /// The longest back-off period, in seconds.
    public static let maxPeriod = 300.0

    /// Where the breaker stands.
    public enum State: Sendable, Equatable {
        case closed(consecutiveTimeouts: Int)
        case open(until: Double, period: Double)
        case probing(period: Double)
    }

    /// How a call ended, as far as the breaker cares.
    public enum Outcome: Sendable, Equatable {
        /// Salesforce answered (anything, even an error).
        case answered
        /// No answer within the upstream timeout.
        case timedOut
        /// The call was admitted but never made (no slot in time, rate limited); neither proof of health nor of sickness.
        case abandoned
    }

    /// The current state.
    public private(set) var state: State = .closed(consecutiveTimeouts: 0)

    /// Creates a closed breaker.
    public init() {}

    /// Whether a call may start at `now`: nil if so, else the seconds to wait (for `Retry-After`).
    public mutating func admit(now: Double) -> Int? {
        switch state {
        case .closed:
            return nil
        case .open(let until, let period):
            guard now >= until else { return max(1, Int((until - now).rounded(.up))) }
            state = .probing(period: period)
            return nil
        case .probing:
            return 1
        }
    }

    /// Records the outcome of an admitted call.
    public mutating func record(_ outcome: Outcome, now: Double) {
        switch (state, outcome) {
        case (_, .answered):
            state = .closed(consecutiveTimeouts: 0)
        case (.closed(let count), .timedOut):
            state =
                count + 1 >= Self.threshold
                ? .open(until: now + Self.firstPeriod, period: Self.firstPeriod)
                : .closed(consecutiveTimeouts: count + 1)
        case (.probing(let period), .timedOut):
            let next = min(period * 2, Self.maxPeriod)
            state = .open(until: now + next, period: next)
        case (.probing(let period), .abandoned):
            state = .open(until: now, period: period)
        case (.open, _), (.closed, .abandoned):
            break
        }
    }
}

/// Per-client bounds on Salesforce calls of one replica: at most `perClient` at once (a request beyond waits for a
/// slot within its deadline), and the `ClientBackoff` breaker. Keyed by tenant and client, not by host: most
/// clients share login.salesforce.com.
public final class UpstreamGate: Sendable {
    struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Bool, Never>
    }

    struct Entry {
        var inUse = 0
        var waiters: [Waiter] = []
        var backoff = ClientBackoff()
    }

    /// Most concurrent calls per client.
    public let perClient: Int
    private let entries = Mutex<[String: Entry]>([:])
    private let nextID = Atomic<Int>(0)

    /// Creates a gate allowing `perClient` concurrent calls per client.
    public init(perClient: Int) { self.perClient = max(1, perClient) }

    static func name(_ key: ConnectionKey) -> String { key.tenant + "/" + key.client }

    /// Asks the breaker: nil when a call may start, else the seconds until the client is tried again.
    public func admit(_ key: ConnectionKey, now: Double) -> Int? {
        entries.withLock { $0[Self.name(key), default: Entry()].backoff.admit(now: now) }
    }

    /// True while the client's breaker is open (a look that changes nothing, unlike `admit`).
    public func isBackedOff(_ key: ConnectionKey, now: Double) -> Bool {
        entries.withLock { entries in
            guard case .open(let until, _)? = entries[Self.name(key)]?.backoff.state else { return false }
            return now < until
        }
    }

    /// Records how an admitted call ended.
    public func record(_ key: ConnectionKey, _ outcome: ClientBackoff.Outcome, now: Double) {
        entries.withLock { $0[Self.name(key), default: Entry()].backoff.record(outcome, now: now) }
    }

    /// Waits for one of the client's call slots until `deadline`; false when none came free in time.
    public func acquire(_ key: ConnectionKey, deadline: ContinuousClock.Instant) async -> Bool {
        let name = Self.name(key)
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        return await withCheckedContinuation { continuation in
            let queued = entries.withLock { entries -> Bool in
                var entry = entries[name] ?? Entry()
                defer { entries[name] = entry }
                if entry.inUse < perClient {
                    entry.inUse += 1
                    return false
                }
                entry.waiters.append(Waiter(id: id, continuation: continuation))
                return true
            }
            guard queued else { return continuation.resume(returning: true) }
            Task { [weak self] in
                try? await Task.sleep(until: deadline, clock: .continuous)
                self?.giveUp(name: name, id: id)
            }
        }
    }

    private func giveUp(name: String, id: Int) {
        let waiter = entries.withLock { entries -> Waiter? in
            guard let index = entries[name]?.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return entries[name]!.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
    }

    /// Returns a slot: the longest waiter gets it, else it is freed.
    public func release(_ key: ConnectionKey) {
        let name = Self.name(key)
        let next = entries.withLock { entries -> Waiter? in
            guard entries[name] != nil else { return nil }
            if entries[name]!.waiters.isEmpty {
                entries[name]!.inUse -= 1
                return nil
            }
            return entries[name]!.waiters.removeFirst()
        }
        next?.continuation.resume(returning: true)
    }

    /// Calls in flight for the client (for tests and metrics).
    public func inUse(_ key: ConnectionKey) -> Int { entries.withLock { $0[Self.name(key)]?.inUse ?? 0 } }
}

/// Wakes requests that wait for another owner's lease on a connection: the `NOTIFY` of a lease that ended
/// (from any replica) or this process's own completion. A ticket taken before reading the row makes a wake-up
/// that comes between the read and the wait count, so none is missed; a wait is always bounded (the fallback poll).
public final class LeaseWaiters: Sendable {
    struct Slot {
        var generation: UInt64 = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let slots = Mutex<[ConnectionKey: Slot]>([:])
    private let nextID = Atomic<Int>(0)

    /// Creates an empty registry.
    public init() {}

    /// The current generation of `key`, to pass to `wait`.
    public func ticket(_ key: ConnectionKey) -> UInt64 { slots.withLock { $0[key]?.generation ?? 0 } }

    /// Returns when `key` is woken after `ticket` was taken, or after `timeout`.
    public func wait(_ key: ConnectionKey, after ticket: UInt64, timeout: Duration) async {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiting = slots.withLock { slots -> Bool in
                var slot = slots[key] ?? Slot()
                guard slot.generation == ticket else { return false }
                slot.waiters[id] = continuation
                slots[key] = slot
                return true
            }
            guard waiting else { return continuation.resume() }
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                self?.resume(key, id: id)
            }
        }
    }

    private func resume(_ key: ConnectionKey, id: Int) {
        let continuation = slots.withLock { slots -> CheckedContinuation<Void, Never>? in
            let found = slots[key]?.waiters.removeValue(forKey: id)
            if slots[key]?.waiters.isEmpty == true && slots[key]?.generation == 0 { slots[key] = nil }
            return found
        }
        continuation?.resume()
    }

    /// Wakes every waiter of `key`.
    public func wake(_ key: ConnectionKey) {
        let woken = slots.withLock { slots -> [CheckedContinuation<Void, Never>] in
            var slot = slots[key] ?? Slot()
            slot.generation &+= 1
            let woken = Array(slot.waiters.values)
            slot.waiters = [:]
            slots[key] = slot
            return woken
        }
        for continuation in woken { continuation.resume() }
    }
}
