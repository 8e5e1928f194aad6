import Codecs

/// What one request needs of a token: the contract's `min_ttl_seconds` and `force_refresh` rules.
public struct TokenNeed: Sendable, Equatable {
    /// A token is good only while more than this many seconds remain.
    public var minTTL: Double
    /// The caller's token was rejected: only a token fetched within `forceGrace` seconds (or since the request
    /// began) will do.
    public var force: Bool
    /// When the request began (seconds since the epoch).
    public var started: Double
    /// `TOKEN_GATEWAY_FORCE_REFRESH_GRACE_SECONDS`.
    public var forceGrace: Double

    /// Creates a need.
    public init(minTTL: Double, force: Bool, started: Double, forceGrace: Double) {
        self.minTTL = minTTL
        self.force = force
        self.started = started
        self.forceGrace = forceGrace
    }

    /// True when `token` satisfies this request at `now`. A token fetched after the request began is as fresh as
    /// a call made now could make it, so it always satisfies (while it has not expired).
    public func accepts(_ token: CachedToken, now: Double) -> Bool {
        let remaining = token.remaining(now: now)
        guard remaining > 0 else { return false }
        if token.fetchedAt >= started { return true }
        if force { return now - token.fetchedAt <= forceGrace }
        return remaining > minTTL
    }

    /// What the fast path does with the token cached for this request: the first of the three choices (memory,
    /// then the database row, then Salesforce; `RefreshDecision` makes the other two).
    public enum CacheChoice: Sendable, Equatable {
        /// Answer with the cached token, with no I/O.
        case serve
        /// A `force_refresh` found a token older than the grace: drop it from memory and go to the database.
        case drop
        /// Nothing usable in memory: go to the database.
        case pass
    }

    /// The fast path's choice for `token` (nil: nothing cached) at `now`.
    public func cacheChoice(_ token: CachedToken?, now: Double) -> CacheChoice {
        guard let token else { return .pass }
        if accepts(token, now: now) { return .serve }
        return force ? .drop : .pass
    }
}

/// The refresh lease of one connection row: who may present its grant to Salesforce right now.
///
/// A lease is claimed in a short transaction, held while Salesforce is called with no database connection held,
/// and ended by the owner's second short transaction. Every claim increments `fence`, so a late owner whose lease
/// was taken over can never overwrite what the new owner stored. All times are the database's clock, given as the
/// seconds that remain, so replicas need not agree on the time.
public struct ConnectionLease: Sendable, Equatable {
    /// The owner of the current (or last) lease; nil when free.
    public var owner: String?
    /// Incremented by every claim.
    public var fence: Int64
    /// Seconds until the current lease lapses (negative once it has); meaningful only with an owner.
    public var secondsLeft: Double

    /// Creates a lease value as read from a row.
    public init(owner: String?, fence: Int64, secondsLeft: Double) {
        self.owner = owner
        self.fence = fence
        self.secondsLeft = secondsLeft
    }

    /// A free lease that was never claimed.
    public static let free = ConnectionLease(owner: nil, fence: 0, secondsLeft: 0)

    /// True while somebody may be calling Salesforce with this connection's grant.
    public var isLive: Bool { owner != nil && secondsLeft > 0 }

    /// What `claim` did.
    public enum ClaimOutcome: Sendable, Equatable {
        /// The lease is ours with this fence; `tookOver` when a lapsed lease of another owner was replaced.
        case claimed(fence: Int64, tookOver: Bool)
        /// Another owner holds a live lease for this many more seconds.
        case busy(secondsLeft: Double)
    }

    /// Claims the lease for `owner` for `duration` seconds, unless another owner's lease is still live.
    public mutating func claim(owner newOwner: String, duration: Double) -> ClaimOutcome {
        if isLive { return .busy(secondsLeft: secondsLeft) }
        let tookOver = owner != nil
        owner = newOwner
        fence += 1
        secondsLeft = duration
        return .claimed(fence: fence, tookOver: tookOver)
    }

    /// Ends the lease if `owner` still holds it at `fence`; false when it was taken over (nothing may be stored).
    public mutating func release(owner releasing: String, fence releasingFence: Int64) -> Bool {
        guard owner == releasing, fence == releasingFence else { return false }
        owner = nil
        secondsLeft = 0
        return true
    }

    /// Ends any lease for a new authorization (`/exchange`, `/callback`): the identity changes, so a refresh still
    /// in flight with the old grant must not store its answer.
    public mutating func supersede() {
        owner = nil
        fence += 1
        secondsLeft = 0
    }
}

/// The last failed attempt to get a token for a connection, as recorded on its row.
public struct RecordedFailure: Sendable, Equatable {
    /// When it happened (seconds since the epoch).
    public var at: Double
    /// The answer requests got.
    public var error: GatewayError

    /// Creates a record.
    public init(at: Double, error: GatewayError) {
        self.at = at
        self.error = error
    }
}

/// A connection row as the refresh path reads it inside the claim transaction.
public struct ConnectionSnapshot: Sendable, Equatable {
    /// False for the implicit `default` connection of a JWT or client-credentials client before its first token.
    public var exists: Bool
    /// `active` or `reauthorization_required`.
    public var needsReauthorization: Bool
    /// The stored access token, if the connection is active and has one.
    public var token: CachedToken?
    /// Whether a refresh token is stored.
    public var hasRefreshToken: Bool
    /// The refresh lease.
    public var lease: ConnectionLease
    /// The last failure, if any (cleared by the next success).
    public var lastFailure: RecordedFailure?

    /// Creates a snapshot.
    public init(
        exists: Bool, needsReauthorization: Bool = false, token: CachedToken? = nil, hasRefreshToken: Bool = false,
        lease: ConnectionLease = .free, lastFailure: RecordedFailure? = nil
    ) {
        self.exists = exists
        self.needsReauthorization = needsReauthorization
        self.token = token
        self.hasRefreshToken = hasRefreshToken
        self.lease = lease
        self.lastFailure = lastFailure
    }
}

/// The refresh path's decision for one read of a connection row: pure, so every branch is unit-tested.
public enum RefreshDecision: Sendable, Equatable {
    /// The stored token satisfies the request (another replica, or a renewal, fetched it).
    case useStored(CachedToken)
    /// Another owner is calling Salesforce for this connection: wait for its notification (at most this long).
    case wait(seconds: Double)
    /// The request fails without calling Salesforce.
    case fail(GatewayError)
    /// Claim the lease and call Salesforce; `takeover` when a lapsed lease of a vanished owner is replaced.
    case claim(takeover: Bool)

    /// Decides what a request with `need` does with the row `snapshot` of a client of `grant`, at `now`.
    ///
    /// Order matters: a satisfying stored token is used even while a renewal is in flight; a live lease is
    /// waited for; a failure that ended a lease this request waited on is the answer (the same Salesforce call
    /// is not repeated for it); a dead refresh token needs a person; otherwise the lease is claimed.
    public static func decide(
        _ snapshot: ConnectionSnapshot, grant: GrantType, need: TokenNeed, now: Double
    ) -> RefreshDecision {
        if let token = snapshot.token, !snapshot.needsReauthorization, need.accepts(token, now: now) {
            return .useStored(token)
        }
        if snapshot.lease.isLive { return .wait(seconds: snapshot.lease.secondsLeft) }
        if let failure = snapshot.lastFailure, failure.at >= need.started {
            return .fail(failure.error)
        }
        if grant == .authorizationCode && (snapshot.needsReauthorization || !snapshot.hasRefreshToken) {
            return .fail(
                GatewayError(
                    .reauthorizationRequired,
                    message:
                        "The connection has no usable refresh token: authorize it again (POST /exchange or an authorize link)."
                ))
        }
        return .claim(takeover: snapshot.lease.owner != nil)
    }
}
