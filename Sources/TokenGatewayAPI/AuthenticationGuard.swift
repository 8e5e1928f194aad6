import Codecs
import Synchronization
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// Failed credentials per client address: a burst of `burst` failures, then `perSecond`; while an address has none
/// left it must wait, whatever it presents. Addresses whose buckets have refilled are forgotten; past
/// `maxAddresses` new addresses share one bucket, so memory stays bounded and a flood of addresses gains nothing.
public struct FailedAuthenticationLimiter: Sendable {
    /// Failures an address may make before it must wait.
    public static let burst = 10.0
    /// Failures per second an address earns back after its burst.
    public static let perSecond = 1.0
    static let overflow = "*"

    /// Addresses tracked one by one; past this, new addresses share one bucket.
    public let maxAddresses: Int
    private(set) var buckets: [String: TokenBucket] = [:]
    private var lastPrune = -Double.infinity

    /// An empty limiter tracking at most `maxAddresses` addresses.
    public init(maxAddresses: Int = 10_000) { self.maxAddresses = maxAddresses }

    /// Whole seconds `address` must wait before presenting a credential again; nil when it may now.
    public func retryAfter(address: String, now: Double) -> Int? {
        guard let bucket = buckets[address] ?? buckets[Self.overflow], bucket.available(now: now) < 1 else {
            return nil
        }
        return max(1, Int(bucket.secondsUntilAvailable(now: now).rounded(.up)))
    }

    /// Notes a credential from `address` that was neither the admin token nor a valid key.
    public mutating func recordFailure(address: String, now: Double) {
        var slot = address
        if buckets[slot] == nil && buckets.count >= maxAddresses {
            if now - lastPrune >= 1 {
                lastPrune = now
                buckets = buckets.filter { !$0.value.isFull(now: now) }
            }
            if buckets.count >= maxAddresses { slot = Self.overflow }
        }
        var bucket = buckets[slot] ?? TokenBucket(capacity: Self.burst, ratePerSecond: Self.perSecond, now: now)
        _ = bucket.take(now: now)
        buckets[slot] = bucket
    }

    /// How many addresses are remembered.
    public var count: Int { buckets.count }
}

/// At most one log line per `intervalSeconds` for each reason; the next line written counts the ones left out.
public struct LogSampler: Sendable {
    /// Seconds between two lines of the same reason.
    public let intervalSeconds: Double
    private var last: [String: (at: Double, suppressed: Int)] = [:]

    /// A sampler admitting one line per reason every `intervalSeconds`.
    public init(intervalSeconds: Double = 1) { self.intervalSeconds = intervalSeconds }

    /// nil: leave this line out; else write it, with the number of lines of this reason left out since the last.
    public mutating func admit(_ reason: String, now: Double) -> Int? {
        if let entry = last[reason], now - entry.at < intervalSeconds {
            last[reason] = (entry.at, entry.suppressed + 1)
            return nil
        }
        let suppressed = last[reason]?.suppressed ?? 0
        last[reason] = (now, 0)
        return suppressed
    }
}

/// What stands between unauthenticated callers and the costly or noisy parts of the gateway: failed credentials
/// limited per address, database lookups of unknown key ids limited globally, and refusal log lines sampled.
public final class AuthenticationGuard: Sendable {
    /// Unknown key ids that may be looked up in the database: a burst, then a steady rate per second.
    public static let lookupBurst = 10.0
    /// The steady rate of unknown-key lookups once the burst is spent.
    public static let lookupsPerSecond = 5.0

    private let origin = ContinuousClock.now
    private let failures = Mutex(FailedAuthenticationLimiter())
    private let lookups: Mutex<TokenBucket>
    private let logs = Mutex(LogSampler())

    /// A guard with nothing recorded and a full lookup bucket.
    public init() {
        lookups = Mutex(TokenBucket(capacity: Self.lookupBurst, ratePerSecond: Self.lookupsPerSecond, now: 0))
    }

    /// Seconds since this guard was made, on a monotonic clock.
    var now: Double { (ContinuousClock.now - origin).seconds }

    /// Whole seconds `address` must wait before any credential of it is checked; nil when it may go on.
    public func retryAfter(address: String) -> Int? {
        let now = self.now
        return failures.withLock { $0.retryAfter(address: address, now: now) }
    }

    /// Counts a refused credential from `address` against its failure budget.
    public func recordFailure(address: String) {
        let now = self.now
        failures.withLock { $0.recordFailure(address: address, now: now) }
    }

    /// True when an unknown key id may cost one database lookup now.
    public func admitLookup() -> Bool {
        let now = self.now
        return lookups.withLock { $0.take(now: now) }
    }

    /// nil when a refusal line of `reason` is to be left out; else the number left out since the last one.
    public func sampleLog(_ reason: String) -> Int? {
        let now = self.now
        return logs.withLock { $0.admit(reason, now: now) }
    }
}

extension GatewayError {
    /// `429 rate_limited`: this address presented too many bad credentials; every credential of it waits.
    static func tooManyFailedCredentials(retryAfter seconds: Int) -> GatewayError {
        GatewayError(
            .rateLimited,
            message: "Too many failed credentials from this address; retry after \(seconds) s.",
            retryAfterSeconds: seconds)
    }

    /// `503 unavailable`: unknown key ids are being looked up faster than the bounded rate allows.
    static let keyLookupsBusy = GatewayError(
        .unavailable,
        message: "Too many unknown API keys are being checked right now; retry in a second.", retryAfterSeconds: 1)
}
