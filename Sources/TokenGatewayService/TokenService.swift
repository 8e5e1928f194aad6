import Codecs
import Foundation
import Logging
import Synchronization
import TokenGatewayDomain
import TokenGatewayStore

/// A token answer and whether this request's Salesforce call produced it.
public struct IssuedToken: Sendable {
    /// The token handed out.
    public var token: CachedToken
    /// Where the token came from.
    public var source: Source
    /// Sentences for the caller about a problem that does not stop this answer (say, no refresh token).
    public var warnings: [String] = []

    /// `cache`: a token fetched earlier; `upstream`: this request's Salesforce call.
    public enum Source: String, Sendable { case cache, upstream }

    /// Creates the value from each of its stored properties.
    public init(token: CachedToken, source: Source, warnings: [String] = []) {
        self.token = token
        self.source = source
        self.warnings = warnings
    }
}

/// Hands out access tokens: from memory when it can, else from PostgreSQL (a token another replica fetched), else
/// from Salesforce, exactly once per connection across every replica, and never holding a database connection
/// while Salesforce is called. A refresh:
/// 1. in-process single flight (`SingleFlight`): one request per connection goes on, the others wait for it;
/// 2. a short claim transaction reads the row under a row lock and decides (`RefreshDecision`): use the stored
///    token, wait for another owner's lease (its `NOTIFY`, or a bounded poll), fail, or claim the lease
///    (`ConnectionLease`: owner, fence, `lease_until` = now + upstream timeout + margin) and commit;
/// 3. the per-client gate (`UpstreamGate`): the breaker of a client whose calls keep timing out, and a bounded
///    number of concurrent calls per client;
/// 4. Salesforce, with no connection held; the whole call ends before the lease can lapse;
/// 5. a second short transaction stores the answer (a rotated refresh token first of all) only if the lease is
///    still this attempt's, ends the lease and `NOTIFY`s; the token is handed out after that commit.
/// A replica that dies mid-call leaves a lease that lapses; the next request anywhere takes it over then.
public final class TokenService: Sendable {
    let store: GatewayStore
    let cache: TokenCache
    let salesforce: SalesforceTokenEndpoint
    let metrics: Metrics
    let logger: Logger
    let forceRefreshGrace: Double
    let limiter: UpstreamRateLimiter
    /// Per-client concurrency and back-off of Salesforce calls.
    public let gate: UpstreamGate
    /// Requests waiting for another owner's lease.
    public let waiters = LeaseWaiters()
    let flights = SingleFlight()
    /// The longest Salesforce call, in seconds.
    let upstreamTimeout: Double
    /// A lease outlives the longest call by this much, so a lease can never lapse while its owner may still call.
    static let leaseMarginSeconds = 5.0
    /// The fallback poll while waiting for another owner's lease (its notification may be lost).
    static let leasePoll = 1.0
    /// Identifies this process in `NOTIFY` messages so it can skip its own.
    public let origin: String
    private let attempts = Atomic<Int>(0)

    /// The service over its parts; the limits are the gateway's configuration settings of the same names.
    public init(
        store: GatewayStore, cache: TokenCache, salesforce: SalesforceTokenEndpoint, metrics: Metrics, logger: Logger,
        forceRefreshGraceSeconds: Double, keyUpstreamLimitPerMinute: Int, upstreamTimeoutSeconds: Double = 15,
        upstreamConcurrencyPerClient: Int = 8
    ) {
        self.store = store
        self.cache = cache
        self.salesforce = salesforce
        self.metrics = metrics
        self.logger = logger
        self.forceRefreshGrace = forceRefreshGraceSeconds
        self.limiter = UpstreamRateLimiter(perMinute: keyUpstreamLimitPerMinute)
        self.gate = UpstreamGate(perClient: upstreamConcurrencyPerClient)
        self.upstreamTimeout = upstreamTimeoutSeconds
        self.origin = UUID().uuidString.prefix(8).lowercased()
    }

    /// Seconds since the epoch.
    public static var now: Double { WallClock.now }

    /// The fast path: the answer body of a cached token that satisfies the request (rendered by `render` once per
    /// cached token), without any I/O; nil when the slow path must decide. `force` drops a stale entry.
    public func cachedHit(_ key: ConnectionKey, minTTL: Double, force: Bool, render: (CachedToken) -> [UInt8])
        -> [UInt8]?
    {
        let now = Self.now
        let need = TokenNeed(minTTL: minTTL, force: force, started: now, forceGrace: forceRefreshGrace)
        switch cache.hit(key, need: need, now: now, render: render) {
        case .served(let body): return body
        case .drop(let accessToken):
            cache.remove(key, ifAccessToken: accessToken)
            return nil
        case .miss: return nil
        }
    }

    /// The slow path: coalesces concurrent requests for the same connection in this process, then asks the
    /// database and, if needed, Salesforce under the connection's refresh lease.
    public func fetchToken(_ key: ConnectionKey, minTTL: Double, force: Bool, keyID: String) async throws -> IssuedToken
    {
        let need = TokenNeed(minTTL: minTTL, force: force, started: Self.now, forceGrace: forceRefreshGrace)
        do {
            let (token, source) = try await flights.run(key, need: need, keyID: keyID, now: { Self.now }) {
                need, keyID in
                guard let result = try await self.refresh(key, need: need, keyID: keyID, background: false) else {
                    throw GatewayError.unavailable  // a request's refresh always ends with a token or an error
                }
                return result
            }
            return IssuedToken(token: token, source: source)
        } catch  where DatabaseFailure(error) != nil {
            // The database is down: a token that has not expired is still better than no answer.
            if let token = cache.get(key), token.remaining(now: Self.now) > 0 {
                logger.warning("database unavailable; serving a cached token", metadata: ["connection": "\(key)"])
                return IssuedToken(token: token, source: .cache)
            }
            throw Self.databaseFailure(error, logger: logger)
        }
    }

    /// The contract's answer when the database fails a token request: a busy pool is not an unreachable database.
    static func databaseFailure(_ error: any Error, logger: Logger) -> GatewayError {
        if DatabaseFailure(error) == .busy {
            logger.warning("database pool busy", metadata: ["error": "\(error)"])
            return GatewayError.busy
        }
        logger.error("database unavailable", metadata: ["error": "\(error)"])
        return GatewayError.unavailable
    }

    /// One way to a token meeting `need`: decide on the row, wait for another owner, or call. A request charges
    /// `keyID`; a background renewal (`background`) charges no key, takes a call slot only if one is free and,
    /// rather than wait for another owner, returns nil (that owner is renewing the token).
    func refresh(_ key: ConnectionKey, need: TokenNeed, keyID: String?, background: Bool) async throws
        -> SingleFlight.Result?
    {
        let demand = background ? nil : need.minTTL
        while true {
            let ticket = waiters.ticket(key)
            let owner = "\(origin)-\(attempts.wrappingAdd(1, ordering: .relaxed).newValue)"
            let deadline = ContinuousClock.now + .seconds(upstreamTimeout)
            let (decision, claim) = try await store.claimRefresh(
                key, owner: owner, leaseSeconds: upstreamTimeout + Self.leaseMarginSeconds
            ) { client, snapshot in
                RefreshDecision.decide(snapshot, grant: client.grantType, need: need, now: Self.now)
            }
            switch decision {
            case .useStored(let token):
                cache.put(key, token, demand: demand)
                return (token, false)
            case .fail(let error):
                if error.code == .reauthorizationRequired || error.code == .notFound {
                    cache.invalidate(tenant: key.tenant, client: key.client, connection: key.connection)
                }
                throw error
            case .wait(let seconds):
                if background { return nil }
                await waiters.wait(key, after: ticket, timeout: .seconds(min(seconds + 0.05, Self.leasePoll)))
            case .claim:
                guard let claim else { continue }
                if claim.tookOver {
                    logger.warning("took over a lapsed refresh lease", metadata: ["connection": "\(key)"])
                }
                return try await callHoldingLease(
                    key, claim: claim, need: need, keyID: keyID, background: background, deadline: deadline)
            }
        }
    }

    /// Calls Salesforce under a claimed lease and stores the answer; whatever happens, the lease ends.
    func callHoldingLease(
        _ key: ConnectionKey, claim: RefreshClaim, need: TokenNeed, keyID: String?, background: Bool,
        deadline: ContinuousClock.Instant
    ) async throws -> SingleFlight.Result? {
        let answer: SalesforceToken
        let grant: TokenGrant
        do {
            grant = try Self.grant(for: claim)
            answer = try await gatedCall(
                key, grant: grant, client: claim.client, keyID: keyID, background: background, deadline: deadline)
        } catch is BackgroundSkip {
            try await store.failRefresh(key, claim: claim, failure: nil, reauthorization: false, origin: origin)
            waiters.wake(key)
            return nil
        } catch let failure as GatewayError {
            let recorded = Self.isConnectionFailure(failure)
            if recorded { metrics.refreshFailure() }
            let reauthorization = failure.code == .reauthorizationRequired
            try await store.failRefresh(
                key, claim: claim, failure: recorded ? failure : nil, reauthorization: reauthorization,
                origin: origin)
            waiters.wake(key)
            if reauthorization {
                cache.invalidate(tenant: key.tenant, client: key.client, connection: key.connection)
            }
            logger.warning(
                "token fetch failed", metadata: ["connection": "\(key)", "error": "\(failure.code)"])
            throw failure
        } catch {
            try? await store.failRefresh(key, claim: claim, failure: nil, reauthorization: false, origin: origin)
            waiters.wake(key)
            throw error
        }
        let token = CachedToken(
            answer, ttlSeconds: claim.client.tokenTTLSeconds, fetchedAt: Self.now,
            introspectedExp: await introspectedExpiry(answer, client: claim.client))
        guard
            try await store.completeRefresh(
                key, claim: claim, answer: answer, token: token, origin: origin, forced: need.force)
        else {
            logger.error(
                "refresh lease was taken over before the answer was stored; the answer is dropped",
                metadata: ["connection": "\(key)"])
            throw GatewayError(
                .upstreamError,
                message: "Salesforce answered too late to be stored; retry.")
        }
        waiters.wake(key)
        cache.put(key, token, demand: background ? nil : need.minTTL)
        return (token, true)
    }

    /// Asks Salesforce once when a new access token really expires, if the client allows it and has a secret;
    /// nil (the `token_ttl_seconds` expiry applies) on any failure. Runs before the token is stored and handed out,
    /// bounded by `introspectionTimeout`, so every answer already carries the real `expires_at`.
    func introspectedExpiry(_ answer: SalesforceToken, client: Client) async -> Int64? {
        guard client.introspect, client.clientSecret != nil else { return nil }
        return try? await salesforce.introspect(
            accessToken: answer.accessToken, client: client, timeout: .seconds(Self.introspectionTimeout))
    }

    /// The longest introspection call, in seconds (well inside a lease's margin).
    static let introspectionTimeout = 2.0

    /// Failures that say something about the connection (recorded as `last_error`, counted as refresh failures);
    /// this key's own rate limit says nothing about it.
    static func isConnectionFailure(_ error: GatewayError) -> Bool { error.code != .rateLimited }

    static func grant(for claim: RefreshClaim) throws -> TokenGrant {
        switch claim.client.grantType {
        case .authorizationCode:
            guard let token = claim.refreshToken else {
                throw GatewayError.reauthorization(
                    "The connection has no usable refresh token: authorize it again (POST /exchange or an authorize link).",
                    upstream: nil)
            }
            return .refreshToken(token)
        case .jwtBearer: return .jwtBearer(assertion: try JWTAssertion.make(client: claim.client))
        case .clientCredentials: return .clientCredentials
        }
    }

    /// One Salesforce call within the bounds: this key's limit (none for `nil`: a code exchange), the client's breaker and its concurrency slots.
    func gatedCall(
        _ key: ConnectionKey, grant: TokenGrant, client: Client, keyID: String?, background: Bool = false,
        deadline: ContinuousClock.Instant
    ) async throws -> SalesforceToken {
        if let keyID, let retryAfter = limiter.take(keyID: keyID, now: Self.now) {
            throw GatewayError(
                .rateLimited,
                message: "This API key caused too many Salesforce calls; retry after \(retryAfter) s.",
                retryAfterSeconds: retryAfter)
        }
        if background && gate.inUse(key) >= gate.perClient { throw BackgroundSkip() }
        if let retryAfter = gate.admit(key, now: Self.now) {
            if background { throw BackgroundSkip() }
            throw GatewayError(
                .upstreamTimeout,
                message:
                    "Salesforce keeps timing out for client '\(key.client)'; calls are paused, retry after \(retryAfter) s.",
                retryAfterSeconds: retryAfter)
        }
        guard await gate.acquire(key, deadline: background ? ContinuousClock.now : deadline) else {
            throw abandonCall(key, background: background)
        }
        defer { gate.release(key) }
        // A slot that came free late: the client may have been backed off meanwhile, or too little of the budget
        // may be left for a call worth making.
        let left = deadline - ContinuousClock.now
        if left < min(.seconds(1), .seconds(upstreamTimeout / 4)) || gate.isBackedOff(key, now: Self.now) {
            throw abandonCall(key, background: background)
        }
        do throws(SalesforceFailure) {
            let answer = try await salesforce.requestToken(grant, client: client, deadline: deadline)
            gate.record(key, .answered, now: Self.now)
            return answer
        } catch {
            switch error {
            case .timeout: gate.record(key, .timedOut, now: Self.now)
            case .unreachable, .transport: gate.record(key, .abandoned, now: Self.now)
            default: gate.record(key, .answered, now: Self.now)
            }
            throw error.gatewayError(grant: grant)
        }
    }

    /// An admitted call that will not be made (no call slot in time, or backed off meanwhile): the breaker learns
    /// nothing from it; a background renewal gives way, a request gets `504`.
    func abandonCall(_ key: ConnectionKey, background: Bool) -> any Error {
        gate.record(key, .abandoned, now: Self.now)
        if background { return BackgroundSkip() }
        return GatewayError(
            .upstreamTimeout,
            message:
                "Client '\(key.client)' got none of its \(gate.perClient) Salesforce call slots in time, or is backed off after timeouts; retry later."
        )
    }

    /// Exchanges an authorization code for the connection `key`, replacing what it held. No lease is needed to
    /// call (a code is single-use and presents no refresh token); storing supersedes any lease, so a refresh still
    /// in flight with the old grant cannot overwrite the new authorization.
    public func exchange(
        _ key: ConnectionKey, code: String, redirectURI: String?, codeVerifier: String?, actor: String
    ) async throws -> IssuedToken {
        var warnings: [String] = []
        do {
            guard let client = try await store.client(tenant: key.tenant, id: key.client) else {
                throw GatewayError.notFound("Client '\(key.client)' does not exist.")
            }
            guard client.grantType == .authorizationCode else {
                throw GatewayError.invalidRequest(
                    "client: '\(key.client)' uses grant_type \(client.grantType.rawValue); /exchange is only for authorization_code clients."
                )
            }
            guard let redirect = redirectURI ?? client.redirectURI else {
                throw GatewayError.invalidRequest("redirect_uri: the client has none; send redirect_uri.")
            }
            let grant = TokenGrant.authorizationCode(code: code, redirectURI: redirect, codeVerifier: codeVerifier)
            let answer: SalesforceToken
            do {
                answer = try await gatedCall(
                    key, grant: grant, client: client, keyID: nil,
                    deadline: ContinuousClock.now + .seconds(upstreamTimeout))
            } catch let error as GatewayError {
                if Self.isConnectionFailure(error) { metrics.refreshFailure() }
                if error.code == .clientRejected { await raiseClientRejected(key, error) }
                throw error
            }
            if answer.refreshToken == nil {
                warnings.append(
                    "Salesforce returned no refresh token: add the 'refresh_token' (or 'offline_access') scope to the connected app and the client, then authorize again; until then this token cannot be renewed."
                )
            }
            let token = CachedToken(
                answer, ttlSeconds: client.tokenTTLSeconds, fetchedAt: Self.now,
                introspectedExp: await introspectedExpiry(answer, client: client))
            guard try await store.saveAuthorization(key, answer: answer, token: token, actor: actor, origin: origin)
            else { throw GatewayError.notFound("Client '\(key.client)' does not exist.") }
            waiters.wake(key)
            cache.put(key, token)
            return IssuedToken(token: token, source: .upstream, warnings: warnings)
        } catch  where DatabaseFailure(error) != nil {
            throw Self.databaseFailure(error, logger: logger)
        }
    }
}

/// A background renewal that gave way (no free call slot, the client backed off): not a failure of the connection.
struct BackgroundSkip: Error {}

/// A token bucket per API key for calls that reach Salesforce, per replica.
final class UpstreamRateLimiter: Sendable {
    private let perMinute: Double
    private let buckets = Mutex<[String: (tokens: Double, at: Double)]>([:])

    init(perMinute: Int) { self.perMinute = Double(perMinute) }

    /// Takes one call; returns nil when allowed, else the seconds to wait.
    func take(keyID: String, now: Double) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[keyID] ?? (perMinute, now)
            bucket.tokens = min(perMinute, bucket.tokens + (now - bucket.at) * perMinute / 60)
            bucket.at = now
            guard bucket.tokens >= 1 else {
                buckets[keyID] = bucket
                return max(1, Int(((1 - bucket.tokens) * 60 / perMinute).rounded(.up)))
            }
            bucket.tokens -= 1
            buckets[keyID] = bucket
            return nil
        }
    }
}
