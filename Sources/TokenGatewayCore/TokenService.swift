import Foundation
import Logging
import Postgres
import Synchronization

/// A token answer and whether this request's Salesforce call produced it.
public struct IssuedToken: Sendable {
    public var token: CachedToken
    public var source: Source
    public var warnings: [String] = []

    public enum Source: String, Sendable { case cache, upstream }
}

/// Hands out access tokens: from memory when it can, else from PostgreSQL (a token another replica fetched), else
/// from Salesforce, exactly once per connection across every replica. The order of events on a refresh:
/// in-process single flight → transaction with `pg_advisory_xact_lock` on the connection → re-read the row →
/// call Salesforce (while holding the lock) → store the new access token and a rotated refresh token → commit →
/// answer. A rotated refresh token is therefore durable before anyone can use the access token it came with.
public final class TokenService: Sendable {
    let store: GatewayStore
    let cache: TokenCache
    let salesforce: SalesforceTokenEndpoint
    let metrics: Metrics
    let logger: Logger
    let forceRefreshGrace: Double
    let limiter: UpstreamRateLimiter
    /// Identifies this process in NOTIFY payloads so it can skip its own messages.
    public let origin: String

    private let inflight = Mutex<[ConnectionKey: Task<(CachedToken, Bool), any Error>]>([:])

    public init(
        store: GatewayStore, cache: TokenCache, salesforce: SalesforceTokenEndpoint, metrics: Metrics, logger: Logger,
        forceRefreshGraceSeconds: Double, keyUpstreamLimitPerMinute: Int
    ) {
        self.store = store
        self.cache = cache
        self.salesforce = salesforce
        self.metrics = metrics
        self.logger = logger
        self.forceRefreshGrace = forceRefreshGraceSeconds
        self.limiter = UpstreamRateLimiter(perMinute: keyUpstreamLimitPerMinute)
        self.origin = UUID().uuidString.prefix(8).lowercased()
    }

    /// Seconds since the epoch.
    public static var now: Double { Date().timeIntervalSince1970 }

    /// The fast path: a cached token that satisfies the request, without any I/O. `force` drops a stale entry.
    public func cachedToken(_ key: ConnectionKey, minTTL: Double, force: Bool) -> CachedToken? {
        guard let token = cache.get(key) else { return nil }
        let now = Self.now
        if force {
            if now - token.fetchedAt <= forceRefreshGrace && token.remaining(now: now) > 0 { return token }
            cache.remove(key, ifAccessToken: token.accessToken)
            return nil
        }
        return token.remaining(now: now) > minTTL ? token : nil
    }

    /// The slow path: coalesces concurrent requests for the same connection in this process, then asks the
    /// database and, if needed, Salesforce under the connection's advisory lock.
    public func fetchToken(_ key: ConnectionKey, minTTL: Double, force: Bool, keyID: String) async throws -> IssuedToken
    {
        let (task, leader) = inflight.withLock { inflight -> (Task<(CachedToken, Bool), any Error>, Bool) in
            if let running = inflight[key] { return (running, false) }
            let started = Self.now
            let task = Task {
                try await self.refresh(key, minTTL: minTTL, force: force, keyID: keyID, started: started)
            }
            inflight[key] = task
            return (task, true)
        }
        defer {
            if leader { inflight.withLock { if $0[key] == task { $0[key] = nil } } }
        }
        do {
            let (token, calledUpstream) = try await task.value
            return IssuedToken(token: token, source: leader && calledUpstream ? .upstream : .cache)
        } catch let error as PostgresError {
            // The database is down: a token that has not expired is still better than no answer.
            if let token = cache.get(key), token.remaining(now: Self.now) > 0 {
                logger.warning("database unavailable; serving a cached token", metadata: ["connection": "\(key)"])
                return IssuedToken(token: token, source: .cache)
            }
            logger.error("database unavailable", metadata: ["error": "\(error)"])
            throw GatewayError.unavailable
        }
    }

    private enum Outcome: Sendable {
        case token(CachedToken, calledUpstream: Bool)
        case failure(GatewayError)
    }

    static func lockSQL() -> String {
        "SELECT pg_advisory_xact_lock(hashtext('tgw-connection'), hashtext($1))"
    }

    /// `started` is when the request began: a token fetched since then (by another replica, while this one waited
    /// for the lock) is as fresh as a new call would make it, so it is used instead.
    private func refresh(_ key: ConnectionKey, minTTL: Double, force: Bool, keyID: String, started: Double) async throws
        -> (CachedToken, Bool)
    {
        let outcome: Outcome = try await store.pool.transaction { connection in
            try await connection.query(Self.lockSQL(), [key.description])
            guard let client = try await store.client(connection, tenant: key.tenant, id: key.client) else {
                return .failure(.notFound("Client '\(key.client)' does not exist."))
            }
            var row = try await connection.query(
                """
                SELECT status, refresh_token, access_token, instance_url, identity_url, scope, token_type,
                  extract(epoch FROM issued_at)::float8 AS issued_at, extract(epoch FROM expires_at)::float8 AS expires_at,
                  extract(epoch FROM fetched_at)::float8 AS fetched_at
                FROM connections WHERE tenant_id = $1 AND client_id = $2 AND id = $3 FOR UPDATE
                """, [key.tenant, key.client, key.connection]
            ).rows.first
            if row == nil {
                guard client.grantType != .authorizationCode else {
                    return .failure(
                        .notFound(
                            "Connection '\(key.connection)' of client '\(key.client)' is not authorized yet: POST /exchange with a code, or make an authorize link."
                        ))
                }
                guard key.connection == "default" else {
                    return .failure(
                        .notFound(
                            "A \(client.grantType.rawValue) client has only the connection 'default'."))
                }
                try await connection.query(
                    "INSERT INTO connections (tenant_id, client_id, id) VALUES ($1, $2, 'default') ON CONFLICT DO NOTHING",
                    [key.tenant, key.client])
                row = nil
            }
            let now = Self.now
            if let row, let stored = try self.storedToken(row, key: key) {
                if stored.fetchedAt >= started && stored.remaining(now: now) > 0 {
                    return .token(stored, calledUpstream: false)
                }
                if !force && stored.remaining(now: now) > minTTL { return .token(stored, calledUpstream: false) }
                if force && now - stored.fetchedAt <= forceRefreshGrace && stored.remaining(now: now) > 0 {
                    return .token(stored, calledUpstream: false)
                }
            }
            let grant: TokenGrant
            switch client.grantType {
            case .authorizationCode:
                guard row?["status"] != "reauthorization_required", let sealed = row?["refresh_token"] else {
                    return .failure(
                        Self.reauthorization(
                            "Connection '\(key.connection)' has no usable refresh token: authorize it again (POST /exchange or an authorize link).",
                            upstream: nil))
                }
                grant = .refreshToken(
                    try store.keyring.open(
                        sealed,
                        for: .init(
                            field: "refresh_token", tenant: key.tenant, client: key.client, connection: key.connection))
                )
            case .jwtBearer:
                grant = .jwtBearer(assertion: try JWTAssertion.make(client: client))
            case .clientCredentials:
                grant = .clientCredentials
            }
            if let retryAfter = limiter.take(keyID: keyID, now: now) {
                return .failure(
                    GatewayError(
                        status: 429, code: "rate_limited",
                        message: "This API key caused too many Salesforce calls; retry after \(retryAfter) s.",
                        retryAfterSeconds: retryAfter))
            }
            let answer: SalesforceToken
            do throws(SalesforceFailure) {
                answer = try await salesforce.requestToken(grant, client: client)
            } catch {
                metrics.refreshFailure()
                let mapped = Self.map(error, grant: grant)
                if mapped.code == "reauthorization_required" {
                    try await connection.query(
                        """
                        UPDATE connections SET status = 'reauthorization_required', access_token = NULL, expires_at = NULL
                        WHERE tenant_id = $1 AND client_id = $2 AND id = $3
                        """, [key.tenant, key.client, key.connection])
                    try await GatewayStore.notifyTokens(
                        connection, tenant: key.tenant, client: key.client, connection: key.connection)
                }
                logger.warning(
                    "token fetch failed",
                    metadata: [
                        "connection": "\(key)", "grant": "\(grant.label)", "error": "\(mapped.code)",
                    ])
                return .failure(mapped)
            }
            let token = try await self.save(answer, client: client, key: key, connection: connection, isExchange: false)
            if force {
                // The caller's old token was rejected: other replicas drop their copy of it.
                try await connection.query("SELECT pg_notify('tgw_tokens', $1)", ["\(origin)|\(key.description)"])
            }
            return .token(token, calledUpstream: true)
        }
        switch outcome {
        case .token(let token, let calledUpstream):
            cache.put(key, token)
            return (token, calledUpstream)
        case .failure(let error):
            if error.code == "reauthorization_required" || error.status == 404 {
                cache.invalidate(
                    tenant: key.tenant, client: key.client, connection: key.connection)
            }
            throw error
        }
    }

    func storedToken(_ row: PostgresRow, key: ConnectionKey) throws -> CachedToken? {
        guard row["status"] == "active", let sealed = row["access_token"],
            let expiresAt = row["expires_at"].flatMap(Double.init),
            let issuedAt = row["issued_at"].flatMap(Double.init), let fetchedAt = row["fetched_at"].flatMap(Double.init)
        else { return nil }
        let access = try store.keyring.open(
            sealed,
            for: .init(
                field: "access_token", tenant: key.tenant, client: key.client, connection: key.connection))
        return CachedToken(
            accessToken: access, instanceURL: row["instance_url"] ?? "", identityURL: row["identity_url"] ?? "",
            scope: row["scope"], tokenType: row["token_type"] ?? "Bearer", issuedAt: issuedAt, expiresAt: expiresAt,
            fetchedAt: fetchedAt)
    }

    /// Stores a fresh answer on the connection (creating it for /exchange): the access token, and the refresh token
    /// when Salesforce sent one (rotation, or a new authorization). Runs inside the caller's transaction.
    func save(
        _ answer: SalesforceToken, client: Client, key: ConnectionKey, connection: PostgresConnection, isExchange: Bool
    )
        async throws -> CachedToken
    {
        let now = Self.now
        let issuedAt = Double(answer.issuedAtMillis) / 1000
        let token = CachedToken(
            accessToken: answer.accessToken, instanceURL: answer.instanceURL, identityURL: answer.identityURL,
            scope: answer.scope, tokenType: answer.tokenType, issuedAt: issuedAt,
            expiresAt: issuedAt + Double(client.tokenTTLSeconds), fetchedAt: now)
        let access = try store.keyring.seal(
            answer.accessToken,
            for: .init(
                field: "access_token", tenant: key.tenant, client: key.client, connection: key.connection))
        let refresh = try answer.refreshToken.map {
            try store.keyring.seal(
                $0,
                for: .init(
                    field: "refresh_token", tenant: key.tenant, client: key.client, connection: key.connection))
        }
        // On /exchange a missing refresh token replaces the old one (a new identity may have been authorized);
        // on refresh a missing one keeps the stored one (rotation is off).
        let refreshSQL = isExchange ? "$4" : "coalesce($4, connections.refresh_token)"
        try await connection.query(
            """
            INSERT INTO connections (tenant_id, client_id, id, user_id, org_id, instance_url, status, refresh_token,
              access_token, identity_url, scope, token_type, issued_at, expires_at, fetched_at, refreshed_at)
            VALUES ($1, $2, $3, $6, $7, $8, 'active', $4, $5, $9, $10, $11, to_timestamp($12::float8),
              to_timestamp($13::float8), to_timestamp($14::float8), now())
            ON CONFLICT (tenant_id, client_id, id) DO UPDATE SET
              user_id = coalesce(EXCLUDED.user_id, connections.user_id),
              org_id = coalesce(EXCLUDED.org_id, connections.org_id),
              instance_url = EXCLUDED.instance_url, status = 'active', refresh_token = \(refreshSQL),
              access_token = EXCLUDED.access_token, identity_url = EXCLUDED.identity_url, scope = EXCLUDED.scope,
              token_type = EXCLUDED.token_type, issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at,
              fetched_at = EXCLUDED.fetched_at, refreshed_at = now()
            """,
            [
                key.tenant, key.client, key.connection, refresh, access, answer.userID, answer.orgID,
                answer.instanceURL,
                answer.identityURL, answer.scope, answer.tokenType, String(token.issuedAt), String(token.expiresAt),
                String(now),
            ])
        return token
    }

    /// Exchanges an authorization code for the connection `key`, replacing what it held, under the same lock
    /// a refresh takes so no refresh runs meanwhile with the old refresh token.
    public func exchange(
        _ key: ConnectionKey, code: String, redirectURI: String?, codeVerifier: String?, actor: String
    ) async throws -> IssuedToken {
        let outcome: Outcome
        var warnings: [String] = []
        do {
            outcome = try await store.pool.transaction { connection in
                try await connection.query(Self.lockSQL(), [key.description])
                guard let client = try await store.client(connection, tenant: key.tenant, id: key.client) else {
                    return .failure(.notFound("Client '\(key.client)' does not exist."))
                }
                guard client.grantType == .authorizationCode else {
                    return .failure(
                        .invalidRequest(
                            "client: '\(key.client)' uses grant_type \(client.grantType.rawValue); /exchange is only for authorization_code clients."
                        ))
                }
                guard let redirect = redirectURI ?? client.redirectURI else {
                    return .failure(.invalidRequest("redirect_uri: the client has none; send redirect_uri."))
                }
                let grant = TokenGrant.authorizationCode(code: code, redirectURI: redirect, codeVerifier: codeVerifier)
                let answer: SalesforceToken
                do throws(SalesforceFailure) {
                    answer = try await salesforce.requestToken(grant, client: client)
                } catch let failure {
                    metrics.refreshFailure()
                    return .failure(Self.map(failure, grant: grant))
                }
                if answer.refreshToken == nil {
                    warnings.append(
                        "Salesforce returned no refresh token: add the 'refresh_token' (or 'offline_access') scope to the connected app and the client, then authorize again; until then this token cannot be renewed."
                    )
                }
                let token = try await self.save(
                    answer, client: client, key: key, connection: connection, isExchange: true)
                try await GatewayStore.audit(
                    connection, tenant: key.tenant, actor: actor, action: "connection.authorize",
                    target: "client/\(key.client)/connection/\(key.connection)")
                try await connection.query("SELECT pg_notify('tgw_tokens', $1)", ["\(origin)|\(key.description)"])
                return .token(token, calledUpstream: true)
            }
        } catch is PostgresError {
            throw GatewayError.unavailable
        }
        switch outcome {
        case .token(let token, _):
            cache.put(key, token)
            return IssuedToken(token: token, source: .upstream, warnings: warnings)
        case .failure(let error):
            throw error
        }
    }

    static func reauthorization(_ message: String, upstream: UpstreamDetails?) -> GatewayError {
        GatewayError(status: 409, code: "reauthorization_required", message: message, upstream: upstream)
    }

    /// The contract's answer to a failed Salesforce call.
    static func map(_ failure: SalesforceFailure, grant: TokenGrant) -> GatewayError {
        switch failure {
        case .refused(let details):
            let error = details.error ?? ""
            let description = details.errorDescription ?? ""
            if ["invalid_client_id", "invalid_client", "unsupported_grant_type"].contains(error)
                || description.contains("not supported on this domain")
            {
                return GatewayError(
                    status: 409, code: "client_rejected",
                    message:
                        "Salesforce refused the client itself (\(error)): fix its client_id, secret, login_url or connected app.",
                    upstream: details)
            }
            if case .authorizationCode = grant {
                return GatewayError(
                    status: 400, code: "invalid_grant",
                    message:
                        "Salesforce refused the authorization code (expired, already used, or another redirect_uri): authorize again and send the new code.",
                    upstream: details)
            }
            if error == "invalid_grant" {
                return reauthorization(
                    "Salesforce no longer accepts this connection's grant (\(description.isEmpty ? error : description)): a person must act (authorize again, or pre-approve the user).",
                    upstream: details)
            }
            return GatewayError(
                status: 502, code: "upstream_error",
                message: "Salesforce refused the token request (\(error)).", upstream: details)
        case .throttled(let retryAfter, let details):
            return GatewayError(
                status: 429, code: "upstream_rate_limited",
                message: "Salesforce is throttling token requests; retry after \(retryAfter) s.",
                upstream: details, retryAfterSeconds: retryAfter)
        case .serverError(let status):
            return GatewayError(
                status: 502, code: "upstream_error", message: "Salesforce answered HTTP \(status); retry later.",
                upstream: UpstreamDetails(status: status))
        case .unreadable(let status):
            return GatewayError(
                status: 502, code: "upstream_error",
                message: "Salesforce's answer was not a token response (HTTP \(status)).")
        case .badSignature:
            return GatewayError(
                status: 502, code: "upstream_error",
                message: "Salesforce's token response failed signature verification; nothing was stored.")
        case .timeout:
            return GatewayError(
                status: 504, code: "upstream_timeout", message: "Salesforce did not answer in time; retry later.")
        case .unreachable, .transport:
            return GatewayError(
                status: 502, code: "upstream_error", message: "Salesforce could not be reached; retry later.")
        }
    }
}

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
