import Codecs

/// A token bucket: holds up to `capacity` tokens, refilled at `ratePerSecond`; each admitted event takes one.
/// A value without a clock of its own: callers pass `now` (seconds on any monotonic scale), so tests need no waiting.
public struct TokenBucket: Sendable, Equatable {
    /// The most tokens the bucket holds.
    public let capacity: Double
    /// Tokens added per second, up to `capacity`.
    public let ratePerSecond: Double
    /// Tokens left at `updated`.
    public private(set) var tokens: Double
    /// The `now` at which `tokens` was last brought up to date.
    public private(set) var updated: Double

    /// A full bucket at `now`.
    public init(capacity: Double, ratePerSecond: Double, now: Double) {
        self.capacity = capacity
        self.ratePerSecond = ratePerSecond
        tokens = capacity
        updated = now
    }

    /// The tokens there would be at `now` (a clock that went backwards refills nothing).
    public func available(now: Double) -> Double {
        min(capacity, tokens + max(0, now - updated) * ratePerSecond)
    }

    /// True when the bucket is full again: it then behaves exactly like a fresh one and need not be kept.
    public func isFull(now: Double) -> Bool { available(now: now) >= capacity }

    /// Seconds until one token is there; 0 when one is there now.
    public func secondsUntilAvailable(now: Double) -> Double {
        max(0, (1 - available(now: now)) / ratePerSecond)
    }

    /// Takes one token if there is one; false (and nothing taken) otherwise.
    public mutating func take(now: Double) -> Bool {
        tokens = available(now: now)
        updated = max(updated, now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
