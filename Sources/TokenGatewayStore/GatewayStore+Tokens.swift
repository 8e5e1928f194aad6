import Codecs
import Foundation
import Postgres
import TokenGatewayDomain

/// A claimed refresh lease: what the owner needs to call Salesforce with no database connection held.
public struct RefreshClaim: Sendable {
    /// The client, secrets opened.
    public var client: Client
    /// The owner that claimed it (unique per attempt).
    public var owner: String
    /// The lease's fence: the completion must present it.
    public var fence: Int64
    /// The connection's refresh token in clear, for `authorization_code` clients.
    public var refreshToken: String?
    /// True when a lapsed lease of another owner was taken over.
    public var tookOver: Bool
}

/// The token path's SQL: claiming a connection's refresh lease, storing what Salesforce answered under that lease,
/// recording failures, and storing a new authorization. Every transaction here is short; none spans a call to
/// Salesforce.
extension GatewayStore {
    static let connectionSnapshotColumns = """
        status, refresh_token IS NOT NULL AS has_refresh_token, access_token, instance_url, identity_url, scope,
        token_type, extract(epoch FROM issued_at)::float8 AS issued_at,
        extract(epoch FROM expires_at)::float8 AS expires_at, extract(epoch FROM fetched_at)::float8 AS fetched_at,
        lease_owner, lease_fence, extract(epoch FROM lease_until - now())::float8 AS lease_left, last_error,
        extract(epoch FROM last_error_at)::float8 AS last_error_at
        """

    /// Reads the connection row under a row lock and asks `decide` what to do; claims the lease for `owner` for
    /// `leaseSeconds` when it says `.claim`. The implicit `default` connection of a JWT or client-credentials
    /// client is created on first use. A missing client or connection is decided here as `404`.
    public func claimRefresh(
        _ key: ConnectionKey, owner: String, leaseSeconds: Double,
        decide: @Sendable (Client, ConnectionSnapshot) -> RefreshDecision
    ) async throws -> (decision: RefreshDecision, claim: RefreshClaim?) {
        try await pool.transaction { db in
            guard let client = try await self.client(db, tenant: key.tenant, id: key.client) else {
                return (.fail(.notFound("Client '\(key.client)' does not exist.")), nil)
            }
            var row = try await self.lockedConnection(db, key)
            if row == nil {
                guard client.grantType != .authorizationCode else {
                    return (
                        .fail(
                            .notFound(
                                "Connection '\(key.connection)' of client '\(key.client)' is not authorized yet: POST /exchange with a code, or make an authorize link."
                            )), nil
                    )
                }
                guard key.connection == "default" else {
                    return (
                        .fail(.notFound("A \(client.grantType.rawValue) client has only the connection 'default'.")),
                        nil
                    )
                }
                try await db.query(
                    "INSERT INTO connections (tenant_id, client_id, id) VALUES ($1, $2, 'default') ON CONFLICT DO NOTHING",
                    [key.tenant, key.client])
                row = try await self.lockedConnection(db, key)
            }
            let snapshot = try row.map { try self.snapshot($0, key: key) } ?? ConnectionSnapshot(exists: false)
            let decision = decide(client, snapshot)
            guard case .claim(let takeover) = decision else { return (decision, nil) }
            var lease = snapshot.lease
            guard case .claimed(let fence, _) = lease.claim(owner: owner, duration: leaseSeconds) else {
                return (.wait(seconds: lease.secondsLeft), nil)
            }
            try await db.query(
                """
                UPDATE connections SET lease_owner = $4, lease_fence = $5::bigint,
                  lease_until = now() + make_interval(secs => $6::float8)
                WHERE tenant_id = $1 AND client_id = $2 AND id = $3
                """,
                [key.tenant, key.client, key.connection, owner, String(fence), String(leaseSeconds)])
            var refreshToken: String?
            if client.grantType == .authorizationCode, let sealed = row?["refresh_token"] {
                refreshToken = try self.keyring.open(sealed, for: .field("refresh_token", key))
            }
            return (
                decision,
                RefreshClaim(client: client, owner: owner, fence: fence, refreshToken: refreshToken, tookOver: takeover)
            )
        }
    }

    /// Stores a refreshed token (and a rotated refresh token) if `claim` still holds the lease, ends the lease and
    /// announces it; false when the lease was taken over meanwhile (nothing is stored).
    public func completeRefresh(
        _ key: ConnectionKey, claim: RefreshClaim, answer: SalesforceToken, token: CachedToken, origin: String,
        forced: Bool
    ) async throws -> Bool {
        try await pool.transaction { db in
            guard try await self.releaseLease(db, key, owner: claim.owner, fence: claim.fence) else { return false }
            try await self.writeToken(db, key, answer: answer, token: token, replaceRefreshToken: false)
            try await Self.notify(db, .leaseEnded(key, origin: origin, forced: forced))
            return true
        }
    }

    /// Ends the lease after a failed attempt and records the failure on the connection (`last_error`); a
    /// reauthorization failure also marks the connection and drops its access token everywhere. The webhook events
    /// of the change (`WebhookEventType.raised`) go into the outbox in the same transaction.
    public func failRefresh(
        _ key: ConnectionKey, claim: RefreshClaim, failure: GatewayError?, reauthorization: Bool, origin: String
    ) async throws {
        try await pool.transaction { db in
            guard try await self.releaseLease(db, key, owner: claim.owner, fence: claim.fence) else { return }
            if let failure {
                // `previous` reads the row as it was before this statement: the status change raises the events.
                let changed = try await db.query(
                    """
                    WITH previous AS (SELECT status FROM connections WHERE tenant_id = $1 AND client_id = $2 AND id = $3)
                    UPDATE connections SET last_error = $4, last_error_at = to_timestamp($5::float8),
                      status = CASE WHEN $6::bool THEN 'reauthorization_required' ELSE status END,
                      access_token = CASE WHEN $6::bool THEN NULL ELSE access_token END,
                      expires_at = CASE WHEN $6::bool THEN NULL ELSE expires_at END
                    WHERE tenant_id = $1 AND client_id = $2 AND id = $3
                    RETURNING (SELECT status FROM previous) AS previous_status, status
                    """,
                    [
                        key.tenant, key.client, key.connection, Self.encode(failure), String(WallClock.now),
                        reauthorization ? "true" : "false",
                    ])
                if let row = changed.rows.first {
                    try await self.raiseEvents(
                        db, key, before: row["previous_status"], after: row["status"], failure: failure)
                }
            }
            try await Self.notify(db, .leaseEnded(key, origin: origin, forced: false))
            if reauthorization {
                try await Self.notify(
                    db, .tokensStale(tenant: key.tenant, client: key.client, connection: key.connection))
            }
        }
    }

    /// Stores a new authorization (`/exchange`, `/callback`): creates or replaces the connection's identity and
    /// refresh token, supersedes any lease (a refresh still in flight with the old grant cannot store its answer),
    /// audits and announces it. False when the client was deleted meanwhile.
    public func saveAuthorization(
        _ key: ConnectionKey, answer: SalesforceToken, token: CachedToken, actor: String, origin: String
    ) async throws -> Bool {
        try await pool.transaction { db in
            guard try await self.client(db, tenant: key.tenant, id: key.client) != nil else { return false }
            try await self.writeToken(db, key, answer: answer, token: token, replaceRefreshToken: true)
            try await Self.audit(
                db, tenant: key.tenant, actor: actor, action: "connection.authorize",
                target: "client/\(key.client)/connection/\(key.connection)")
            try await Self.notify(db, .leaseEnded(key, origin: origin, forced: true))
            return true
        }
    }

    // MARK: Pieces

    func lockedConnection(_ db: PostgresConnection, _ key: ConnectionKey) async throws -> PostgresRow? {
        try await db.query(
            """
            SELECT \(Self.connectionSnapshotColumns), refresh_token
            FROM connections WHERE tenant_id = $1 AND client_id = $2 AND id = $3 FOR UPDATE
            """, [key.tenant, key.client, key.connection]
        ).rows.first
    }

    /// Ends the lease through `ConnectionLease.release`; false when `owner` no longer holds it at `fence`.
    func releaseLease(_ db: PostgresConnection, _ key: ConnectionKey, owner: String, fence: Int64) async throws -> Bool
    {
        guard let row = try await lockedConnection(db, key) else { return false }
        var lease = Self.lease(row)
        guard lease.release(owner: owner, fence: fence) else { return false }
        try await db.query(
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE tenant_id = $1 AND client_id = $2 AND id = $3",
            [key.tenant, key.client, key.connection])
        return true
    }

    static func lease(_ row: PostgresRow) -> ConnectionLease {
        ConnectionLease(
            owner: row["lease_owner"], fence: Int64(row["lease_fence"] ?? "") ?? 0,
            secondsLeft: row["lease_left"].flatMap(Double.init) ?? 0)
    }

    func snapshot(_ row: PostgresRow, key: ConnectionKey) throws -> ConnectionSnapshot {
        var token: CachedToken?
        if row["status"] == "active", let sealed = row["access_token"],
            let expiresAt = row["expires_at"].flatMap(Double.init),
            let issuedAt = row["issued_at"].flatMap(Double.init), let fetchedAt = row["fetched_at"].flatMap(Double.init)
        {
            token = CachedToken(
                accessToken: try keyring.open(sealed, for: .field("access_token", key)),
                instanceURL: row["instance_url"] ?? "", identityURL: row["identity_url"] ?? "", scope: row["scope"],
                tokenType: row["token_type"] ?? "Bearer", issuedAt: issuedAt, expiresAt: expiresAt,
                fetchedAt: fetchedAt)
        }
        var failure: RecordedFailure?
        if let text = row["last_error"], let at = row["last_error_at"].flatMap(Double.init),
            let error = Self.decodeFailure(text)
        {
            failure = RecordedFailure(at: at, error: error)
        }
        return ConnectionSnapshot(
            exists: true, needsReauthorization: row["status"] == "reauthorization_required", token: token,
            hasRefreshToken: row["has_refresh_token"] == "t", lease: Self.lease(row), lastFailure: failure)
    }

    /// Writes a token answer on the connection, creating the row for a new authorization. A refresh answer without
    /// a refresh token keeps the stored one (rotation is off); a new authorization replaces it, and clears any
    /// lease. Either way the last error is cleared, and a connection that needed a person raises
    /// `connection.recovered` in the caller's transaction.
    func writeToken(
        _ db: PostgresConnection, _ key: ConnectionKey, answer: SalesforceToken, token: CachedToken,
        replaceRefreshToken: Bool
    ) async throws {
        let access = try keyring.seal(answer.accessToken, for: .field("access_token", key))
        let refresh = try answer.refreshToken.map { try keyring.seal($0, for: .field("refresh_token", key)) }
        let refreshSQL = replaceRefreshToken ? "$4" : "coalesce($4, connections.refresh_token)"
        let leaseSQL =
            replaceRefreshToken
            ? "lease_owner = NULL, lease_until = NULL, lease_fence = connections.lease_fence + 1," : ""
        // `previous` reads the row as it was before this statement: a connection that needed a person and is active
        // again raises `connection.recovered`.
        let written = try await db.query(
            """
            WITH previous AS (SELECT status FROM connections WHERE tenant_id = $1 AND client_id = $2 AND id = $3)
            INSERT INTO connections (tenant_id, client_id, id, user_id, org_id, instance_url, status, refresh_token,
              access_token, identity_url, scope, token_type, issued_at, expires_at, fetched_at, refreshed_at,
              refresh_token_used_at)
            VALUES ($1, $2, $3, $6, $7, $8, 'active', $4, $5, $9, $10, $11, to_timestamp($12::float8),
              to_timestamp($13::float8), to_timestamp($14::float8), now(), now())
            ON CONFLICT (tenant_id, client_id, id) DO UPDATE SET
              user_id = coalesce(EXCLUDED.user_id, connections.user_id),
              org_id = coalesce(EXCLUDED.org_id, connections.org_id),
              instance_url = EXCLUDED.instance_url, status = 'active', refresh_token = \(refreshSQL),
              access_token = EXCLUDED.access_token, identity_url = EXCLUDED.identity_url, scope = EXCLUDED.scope,
              token_type = EXCLUDED.token_type, issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at,
              fetched_at = EXCLUDED.fetched_at, refreshed_at = now(), \(leaseSQL) last_error = NULL,
              last_error_at = NULL, refresh_token_used_at = now(), keepalive_after = NULL, background_failures = 0
            RETURNING (SELECT status FROM previous) AS previous_status
            """,
            [
                key.tenant, key.client, key.connection, refresh, access, answer.userID, answer.orgID,
                answer.instanceURL, answer.identityURL, answer.scope, answer.tokenType, String(token.issuedAt),
                String(token.expiresAt), String(token.fetchedAt),
            ])
        try await raiseEvents(
            db, key, before: written.rows.first?["previous_status"], after: "active", failure: nil)
    }

    /// Sends `message` to every replica when the transaction commits.
    static func notify(_ db: PostgresConnection, _ message: GatewayNotification) async throws {
        try await db.query("SELECT pg_notify($1, $2)", [GatewayNotification.channel, message.payload])
    }

    /// A failure as stored in `last_error`: the contract's error body plus `Retry-After`. (Rows written before the
    /// error codes were typed also hold a `status`, which is ignored: the HTTP API derives it from the code.)
    static func encode(_ failure: GatewayError) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("error", failure.code.rawValue)
        writer.field("message", failure.message)
        if let upstream = failure.upstream {
            writer.field("upstream", upstream)
        }
        writer.field("retry_after", failure.retryAfterSeconds)
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    static func decodeFailure(_ text: String) -> GatewayError? {
        guard let json = try? JSONValue.parse(Array(text.utf8)),
            let code = json["error"]?.stringValue.flatMap(GatewayError.Code.init(rawValue:)),
            let message = json["message"]?.stringValue
        else { return nil }
        var upstream: UpstreamDetails?
        if let details = json["upstream"], case .number(let upstreamStatus)? = details["status"] {
            upstream = UpstreamDetails(
                status: Int(upstreamStatus), error: details["error"]?.stringValue,
                errorDescription: details["error_description"]?.stringValue)
        }
        var retryAfter: Int?
        if case .number(let seconds)? = json["retry_after"] { retryAfter = Int(seconds) }
        return GatewayError(code, message: message, upstream: upstream, retryAfterSeconds: retryAfter)
    }
}

extension Keyring.Binding {
    /// The binding of a connection's secret `field` (`access_token`, `refresh_token`).
    static func field(_ field: String, _ key: ConnectionKey) -> Keyring.Binding {
        Keyring.Binding(field: field, tenant: key.tenant, client: key.client, connection: key.connection)
    }
}

/// The keep-alive sweep's SQL.
extension GatewayStore {
    /// Picks up to `limit` active `authorization_code` connections whose refresh token has gone unused for
    /// `keepaliveSeconds`, oldest first, skipping rows another replica is sweeping (`SKIP LOCKED`) or that are
    /// leased, and puts them off for `holdSeconds` so no other sweep takes them meanwhile (or, after a failure,
    /// before their back-off ends).
    public func claimKeepalive(keepaliveSeconds: Double, limit: Int, holdSeconds: Double) async throws
        -> [ConnectionKey]
    {
        let result = try await pool.query(
            """
            UPDATE connections SET keepalive_after = now() + make_interval(secs => $3::float8)
            WHERE (tenant_id, client_id, id) IN (
              SELECT n.tenant_id, n.client_id, n.id FROM connections n
              JOIN clients c ON c.tenant_id = n.tenant_id AND c.id = n.client_id
              WHERE c.grant_type = 'authorization_code' AND n.status = 'active' AND n.refresh_token IS NOT NULL
                AND coalesce(n.refresh_token_used_at, n.created_at) < now() - make_interval(secs => $1::float8)
                AND (n.keepalive_after IS NULL OR n.keepalive_after <= now())
                AND (n.lease_owner IS NULL OR n.lease_until < now())
              ORDER BY coalesce(n.refresh_token_used_at, n.created_at)
              LIMIT $2::int FOR UPDATE OF n SKIP LOCKED)
            RETURNING tenant_id, client_id, id
            """, [String(keepaliveSeconds), String(limit), String(holdSeconds)])
        return result.rows.map {
            ConnectionKey(tenant: $0["tenant_id"] ?? "", client: $0["client_id"] ?? "", connection: $0["id"] ?? "")
        }
    }

    /// Backs off a connection whose background refresh failed: 1 min, doubling with each failure, at most 1 h.
    public func backgroundFailed(_ key: ConnectionKey) async throws {
        try await pool.query(
            """
            UPDATE connections SET background_failures = background_failures + 1,
              keepalive_after = now() + make_interval(secs => least(3600, 60 * power(2, background_failures)))
            WHERE tenant_id = $1 AND client_id = $2 AND id = $3
            """, [key.tenant, key.client, key.connection])
    }
}
