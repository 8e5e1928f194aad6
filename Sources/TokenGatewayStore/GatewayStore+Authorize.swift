import Codecs
import Postgres
import TokenGatewayDomain

/// A started authorize link, as `/callback` claims it: whose connection it authorizes, the sealed PKCE verifier and
/// the redirect URI the code was issued for.
public struct AuthorizeState: Sendable, Equatable {
    /// The tenant of the client.
    public var tenant: String
    /// The client's id.
    public var client: String
    /// The connection the code will authorize.
    public var connection: String
    /// The PKCE verifier, sealed for the field `code_verifier` and the state's hash.
    public var sealedVerifier: String
    /// The redirect URI of the authorize link.
    public var redirectURI: String
}

/// Authorize links: single-use states kept hashed, so any replica can complete the flow.
extension GatewayStore {
    /// Stores a new state (and forgets states expired for over a day), with its audit event, in one transaction.
    public func createAuthorizeState(
        hash: String, tenant: String, client: String, connection: String, sealedVerifier: String,
        redirectURI: String, expiresAt: Double, actor: String
    ) async throws {
        try await pool.transaction { db in
            try await db.query(
                """
                INSERT INTO authorize_states (state_hash, tenant_id, client_id, connection_id, code_verifier, redirect_uri, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::float8))
                """, [hash, tenant, client, connection, sealedVerifier, redirectURI, String(expiresAt)])
            try await db.query("DELETE FROM authorize_states WHERE expires_at < now() - interval '1 day'")
            try await Self.audit(
                db, tenant: tenant, actor: actor, action: "connection.authorize_link",
                target: "client/\(client)/connection/\(connection)")
        }
    }

    /// Spends the state `hash` if it is unused and unexpired; nil otherwise.
    public func claimAuthorizeState(hash: String) async throws -> AuthorizeState? {
        let claimed = try await pool.query(
            """
            UPDATE authorize_states SET used_at = now()
            WHERE state_hash = $1 AND used_at IS NULL AND expires_at > now()
            RETURNING tenant_id, client_id, connection_id, code_verifier, redirect_uri
            """, [hash])
        guard let row = claimed.rows.first, let tenant = row["tenant_id"], let client = row["client_id"],
            let connection = row["connection_id"], let sealed = row["code_verifier"], let redirect = row["redirect_uri"]
        else { return nil }
        return AuthorizeState(
            tenant: tenant, client: client, connection: connection, sealedVerifier: sealed, redirectURI: redirect)
    }

    /// Whether the state `hash` was ever issued (used or expired ones included).
    public func authorizeStateExists(hash: String) async throws -> Bool {
        try await !pool.query("SELECT 1 FROM authorize_states WHERE state_hash = $1", [hash]).rows.isEmpty
    }

    /// How many connections need a person to authorize again (for the gauge).
    public func reauthorizationRequiredCount() async throws -> Int {
        let count = try await pool.query(
            "SELECT count(*) AS n FROM connections WHERE status = 'reauthorization_required'")
        return Int(count.rows.first?["n"] ?? "0") ?? 0
    }
}
