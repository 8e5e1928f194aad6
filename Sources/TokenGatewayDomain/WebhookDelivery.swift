import Codecs

/// The life of one event's delivery to one webhook, as a value without I/O: pending → in flight (one replica's
/// claim, bounded in time) → delivered, or pending again with a retry time, or given up 24 hours after the event.
///
/// Times are seconds on one clock (the store uses the database's). The store mirrors `isClaimable` in its claim
/// query and applies what `finish` returns.
public struct WebhookDelivery: Sendable, Equatable {
    /// Where a delivery is.
    public enum State: Sendable, Equatable {
        /// Waiting for an attempt at or after `due`.
        case pending(due: Double)
        /// `owner` is attempting it; if `owner` dies, another may take it once `until` has passed.
        case inFlight(owner: String, until: Double)
        /// A receiver answered 2xx.
        case delivered(at: Double)
        /// No attempt succeeded within `giveUpAfter` of the event.
        case gaveUp(at: Double)
    }

    /// What one attempt came to.
    public enum Outcome: Sendable, Equatable {
        /// The receiver answered with this HTTP status.
        case answered(status: Int)
        /// No answer: refused connection, timeout, TLS failure, ... (`reason` is for `last_delivery.error`).
        case noAnswer(reason: String)
    }

    /// What the store does after an attempt.
    public enum Action: Sendable, Equatable {
        /// Remove the delivery: it reached the receiver.
        case delivered
        /// Try again in `seconds`.
        case retry(inSeconds: Double)
        /// Remove the delivery: it has been failing for `giveUpAfter`.
        case giveUp
        /// The attempt's claim was no longer this owner's (it lapsed and another took it): change nothing.
        case ignore
    }

    /// The longest wait for a receiver's answer.
    public static let attemptTimeout = 10.0
    /// A claim outlives an attempt by this much, so it cannot lapse while its owner may still be sending.
    public static let claimMargin = 5.0
    /// The first retry comes this long after the first failure; each later one waits twice as long as the last.
    public static let firstRetry = 2.0
    /// Retries are never further apart than this.
    public static let longestRetry = 600.0
    /// Retries stop this long after the event.
    public static let giveUpAfter = 86_400.0

    /// When the event was created, in seconds since the epoch; retries stop `giveUpAfter` later.
    public var createdAt: Double
    /// Attempts started so far (a claim counts one).
    public var attempts: Int
    /// Where the delivery stands.
    public var state: State

    /// A new delivery, due at once.
    public init(createdAt: Double, attempts: Int = 0, state: State? = nil) {
        self.createdAt = createdAt
        self.attempts = attempts
        self.state = state ?? .pending(due: createdAt)
    }

    /// The wait after failed attempt number `attempt` (1-based): 2 s, 4 s, 8 s, ... at most 10 minutes.
    public static func retryDelay(afterAttempt attempt: Int) -> Double {
        min(longestRetry, firstRetry * Double(1 << min(max(attempt - 1, 0), 20)))
    }

    /// True when an attempt may start now: it is due, or its owner's claim has lapsed.
    public func isClaimable(now: Double) -> Bool {
        switch state {
        case .pending(let due): due <= now
        case .inFlight(_, let until): until <= now
        case .delivered, .gaveUp: false
        }
    }

    /// Starts an attempt for `owner`; false (and nothing changes) when it is not claimable.
    public mutating func claim(owner: String, now: Double) -> Bool {
        guard isClaimable(now: now) else { return false }
        attempts += 1
        state = .inFlight(owner: owner, until: now + Self.attemptTimeout + Self.claimMargin)
        return true
    }

    /// Ends `owner`'s attempt with `outcome`.
    public mutating func finish(owner: String, outcome: Outcome, now: Double) -> Action {
        guard case .inFlight(let holder, _) = state, holder == owner else { return .ignore }
        if case .answered(let status) = outcome, (200..<300).contains(status) {
            state = .delivered(at: now)
            return .delivered
        }
        let delay = Self.retryDelay(afterAttempt: attempts)
        guard now + delay <= createdAt + Self.giveUpAfter else {
            state = .gaveUp(at: now)
            return .giveUp
        }
        state = .pending(due: now + delay)
        return .retry(inSeconds: delay)
    }

    /// `last_delivery.error` for an outcome: nil for a 2xx answer.
    public static func errorText(_ outcome: Outcome) -> String? {
        switch outcome {
        case .answered(let status) where (200..<300).contains(status): nil
        case .answered(let status): "the receiver answered HTTP \(status)"
        case .noAnswer(let reason): reason
        }
    }
}
