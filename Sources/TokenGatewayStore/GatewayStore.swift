import Codecs
import Foundation
import Postgres
import Synchronization
import TokenGatewayDomain

/// A refresh token to revoke at Salesforce after its rows are gone (best effort).
public struct RevocationTarget: Sendable {
    /// Salesforce's revocation endpoint for the token.
    public var endpoint: String
    /// The refresh token, opened; a secret, never logged.
    public var token: String
}

/// One audit event as listed by the admin API.
public struct AuditEvent: Sendable, Equatable {
    /// The event's id; later events have larger ids.
    public var id: Int
    /// When it happened (RFC 3339).
    public var at: String
    /// Who did it: `admin` or `key:<id>` (`Caller.actor`).
    public var actor: String
    /// What was done, such as `client.create`.
    public var action: String
    /// What it was done to, such as `client/<id>`.
    public var target: String
    /// How many, for counted events (tokens issued with a key); nil otherwise.
    public var count: Int?
}

/// Everything the gateway keeps in PostgreSQL. Secrets are sealed here on the way in and opened on the way out;
/// no clear-text secret reaches a SQL statement's text, a row, or an error.
public final class GatewayStore: Sendable {
    /// The PostgreSQL connections every query goes through.
    public let pool: PostgresPool
    /// Seals secrets on the way in and opens them on the way out.
    public let keyring: Keyring
    /// Database lookups of one key id (keys made on another replica, or guesses): bounded, and counted for tests.
    let keyLookups = Atomic<Int>(0)

    /// A store over `pool`, sealing with `keyring`.
    public init(pool: PostgresPool, keyring: Keyring) {
        self.pool = pool
        self.keyring = keyring
    }

    static let clientColumns = """
        tenant_id, id, grant_type, login_url, client_id, client_secret, private_key, redirect_uri, scopes, username,
        audience, token_ttl_seconds, introspect, tgw_iso(created_at) AS created_at, tgw_iso(updated_at) AS updated_at
        """

    // MARK: Tenants

    /// Creates a tenant and audits it; `GatewayError.conflict` when the id is taken.
    public func createTenant(id: String, name: String?, actor: String) async throws -> Tenant {
        try await pool.transaction { connection in
            let result: PostgresResult
            do {
                result = try await connection.query(
                    "INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING tgw_iso(created_at) AS created_at",
                    [id, name])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw GatewayError.conflict("Tenant '\(id)' already exists.")
            }
            try await Self.audit(connection, tenant: id, actor: actor, action: "tenant.create", target: "tenant/\(id)")
            return Tenant(id: id, name: name, createdAt: result.rows.first?["created_at"] ?? "")
        }
    }

    /// Every tenant, by id.
    public func tenants() async throws -> [Tenant] {
        let result = try await pool.query("SELECT id, name, tgw_iso(created_at) AS created_at FROM tenants ORDER BY id")
        return result.rows.map { Tenant(id: $0["id"] ?? "", name: $0["name"], createdAt: $0["created_at"] ?? "") }
    }

    /// The tenant `id`; nil when there is none.
    public func tenant(_ id: String) async throws -> Tenant? {
        let result = try await pool.query(
            "SELECT id, name, tgw_iso(created_at) AS created_at FROM tenants WHERE id = $1", [id])
        return result.rows.first.map { Tenant(id: $0["id"] ?? "", name: $0["name"], createdAt: $0["created_at"] ?? "") }
    }

    /// Deletes a tenant with its keys, clients, connections and tokens; returns the refresh tokens to revoke.
    public func deleteTenant(_ id: String, actor: String) async throws -> (deleted: Bool, revoke: [RevocationTarget]) {
        try await pool.transaction { connection in
            let targets = try await self.revocationTargets(connection, where: "c.tenant_id = $1", [id])
            let result = try await connection.query("DELETE FROM tenants WHERE id = $1", [id])
            guard result.affectedRows == 1 else { return (false, []) }
            try await Self.audit(connection, tenant: id, actor: actor, action: "tenant.delete", target: "tenant/\(id)")
            try await Self.notify(connection, .tenantDeleted(tenant: id))
            return (true, targets)
        }
    }

    // MARK: API keys

    /// Stores an API key's hash (never the key) and audits it; `GatewayError.notFound` when the tenant does not exist.
    public func createKey(tenant: String, id: String, name: String?, hash: String, actor: String) async throws
        -> APIKeyInfo
    {
        try await pool.transaction { connection in
            guard try await connection.query("SELECT 1 FROM tenants WHERE id = $1 FOR SHARE", [tenant]).rows.count == 1
            else { throw GatewayError.notFound("Tenant '\(tenant)' does not exist.") }
            let result = try await connection.query(
                "INSERT INTO api_keys (id, tenant_id, name, key_hash) VALUES ($1, $2, $3, $4) RETURNING tgw_iso(created_at) AS created_at",
                [id, tenant, name, hash])
            try await Self.audit(connection, tenant: tenant, actor: actor, action: "key.create", target: "key/\(id)")
            return APIKeyInfo(
                id: id, tenant: tenant, name: name, createdAt: result.rows.first?["created_at"] ?? "", lastUsedAt: nil)
        }
    }

    /// The API keys of `tenant`, oldest first.
    public func keys(tenant: String) async throws -> [APIKeyInfo] {
        let result = try await pool.query(
            """
            SELECT id, tenant_id, name, tgw_iso(created_at) AS created_at, tgw_iso(last_used_at) AS last_used_at
            FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id
            """, [tenant])
        return result.rows.map {
            APIKeyInfo(
                id: $0["id"] ?? "", tenant: $0["tenant_id"] ?? "", name: $0["name"], createdAt: $0["created_at"] ?? "",
                lastUsedAt: $0["last_used_at"])
        }
    }

    /// Deletes key `id` of `tenant`, audits it and tells every replica; false when there was none.
    public func deleteKey(tenant: String, id: String, actor: String) async throws -> Bool {
        try await pool.transaction { connection in
            let result = try await connection.query(
                "DELETE FROM api_keys WHERE tenant_id = $1 AND id = $2", [tenant, id])
            guard result.affectedRows == 1 else { return false }
            try await Self.audit(connection, tenant: tenant, actor: actor, action: "key.delete", target: "key/\(id)")
            try await Self.notify(connection, .keyDeleted(id: id))
            return true
        }
    }

    /// Hash and tenant of every key, for the in-memory key registry.
    public func keyHashes(id: String? = nil) async throws -> [(id: String, tenant: String, hash: String)] {
        if id != nil { keyLookups.add(1, ordering: .relaxed) }
        let result = try await pool.query(
            "SELECT id, tenant_id, key_hash FROM api_keys WHERE $1::text IS NULL OR id = $1", [id])
        return result.rows.map { ($0["id"] ?? "", $0["tenant_id"] ?? "", $0["key_hash"] ?? "") }
    }

    /// Records when keys were last used, and per-key token counts in the audit log, in one statement batch.
    public func recordKeyUse(lastUsed: [String: Double], tokensIssued: [String: (tenant: String, count: Int)])
        async throws
    {
        guard !lastUsed.isEmpty || !tokensIssued.isEmpty else { return }
        try await pool.transaction { connection in
            for (id, epoch) in lastUsed {
                try await connection.query(
                    "UPDATE api_keys SET last_used_at = greatest(last_used_at, to_timestamp($2::float8)) WHERE id = $1",
                    [id, String(epoch)])
            }
            for (id, usage) in tokensIssued {
                try await Self.audit(
                    connection, tenant: usage.tenant, actor: "key:\(id)", action: "token.issued",
                    target: "key/\(id)", count: usage.count)
            }
        }
    }

    // MARK: Clients

    func sealClientSecrets(_ client: Client) throws -> (secret: String?, privateKey: String?) {
        let secret = try client.clientSecret.map {
            try keyring.seal($0, for: .init(field: "client_secret", tenant: client.tenant, client: client.id))
        }
        let key = try client.privateKey.map {
            try keyring.seal($0, for: .init(field: "private_key", tenant: client.tenant, client: client.id))
        }
        return (secret, key)
    }

    func clientParameters(_ client: Client) throws -> [String?] {
        let sealed = try sealClientSecrets(client)
        let scopes = client.scopes.map { scopes -> String in
            var writer = JSONWriter()
            writer.beginArray()
            for scope in scopes { writer.value(scope) }
            writer.endArray()
            return String(decoding: writer.bytes, as: UTF8.self)
        }
        return [
            client.tenant, client.id, client.grantType.rawValue, client.loginURL, client.clientID, sealed.secret,
            sealed.privateKey, client.redirectURI, scopes, client.username, client.audience,
            String(client.tokenTTLSeconds), client.introspect ? "true" : "false",
        ]
    }

    func decodeClient(_ row: PostgresRow) throws -> Client {
        let tenant = row["tenant_id"] ?? ""
        let id = row["id"] ?? ""
        var scopes: [String]?
        if let text = row["scopes"], case .array(let items)? = try? JSONValue.parse(Array(text.utf8)) {
            scopes = items.compactMap(\.stringValue)
        }
        return Client(
            tenant: tenant, id: id, grantType: GrantType(rawValue: row["grant_type"] ?? "") ?? .authorizationCode,
            loginURL: row["login_url"] ?? "", clientID: row["client_id"] ?? "",
            clientSecret: try row["client_secret"].map {
                try keyring.open($0, for: .init(field: "client_secret", tenant: tenant, client: id))
            },
            privateKey: try row["private_key"].map {
                try keyring.open($0, for: .init(field: "private_key", tenant: tenant, client: id))
            },
            redirectURI: row["redirect_uri"], scopes: scopes, username: row["username"], audience: row["audience"],
            tokenTTLSeconds: Int(row["token_ttl_seconds"] ?? "") ?? 3600, introspect: row["introspect"] != "f",
            createdAt: row["created_at"] ?? "",
            updatedAt: row["updated_at"] ?? "")
    }

    /// Stores `client` with its secrets sealed and audits it; `GatewayError.notFound` when the tenant does not exist,
    /// `conflict` when the id is taken.
    public func createClient(_ client: Client, actor: String) async throws -> Client {
        let parameters = try clientParameters(client)
        return try await pool.transaction { connection in
            guard
                try await connection.query("SELECT 1 FROM tenants WHERE id = $1 FOR SHARE", [client.tenant]).rows.count
                    == 1
            else { throw GatewayError.notFound("Tenant '\(client.tenant)' does not exist.") }
            let result: PostgresResult
            do {
                result = try await connection.query(
                    """
                    INSERT INTO clients (tenant_id, id, grant_type, login_url, client_id, client_secret, private_key,
                      redirect_uri, scopes, username, audience, token_ttl_seconds, introspect)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::int, $13::bool)
                    RETURNING \(Self.clientColumns)
                    """, parameters)
            } catch let error as PostgresError where error.isUniqueViolation {
                throw GatewayError.conflict("Client '\(client.id)' already exists in tenant '\(client.tenant)'.")
            }
            try await Self.audit(
                connection, tenant: client.tenant, actor: actor, action: "client.create",
                target: "client/\(client.id)")
            guard let row = result.rows.first else { throw GatewayError.notFound("Client vanished.") }
            return try self.decodeClient(row)
        }
    }

    /// The client `id` of `tenant`, its secrets opened; nil when there is none.
    public func client(tenant: String, id: String) async throws -> Client? {
        let result = try await pool.query(
            "SELECT \(Self.clientColumns) FROM clients WHERE tenant_id = $1 AND id = $2", [tenant, id])
        return try result.rows.first.map(decodeClient)
    }

    /// Loads a client inside a transaction (the refresh path).
    func client(_ connection: PostgresConnection, tenant: String, id: String) async throws -> Client? {
        let result = try await connection.query(
            "SELECT \(Self.clientColumns) FROM clients WHERE tenant_id = $1 AND id = $2", [tenant, id])
        return try result.rows.first.map(decodeClient)
    }

    /// The clients of `tenant`, by id, their secrets opened.
    public func clients(tenant: String) async throws -> [Client] {
        let result = try await pool.query(
            "SELECT \(Self.clientColumns) FROM clients WHERE tenant_id = $1 ORDER BY id", [tenant])
        return try result.rows.map(decodeClient)
    }

    /// Replaces a client's fields and drops its cached access tokens (refresh tokens stay: the identity is unchanged).
    public func updateClient(_ client: Client, actor: String) async throws -> Client {
        let parameters = try clientParameters(client)
        return try await pool.transaction { connection in
            let result = try await connection.query(
                """
                UPDATE clients SET grant_type = $3, login_url = $4, client_id = $5, client_secret = $6, private_key = $7,
                  redirect_uri = $8, scopes = $9, username = $10, audience = $11, token_ttl_seconds = $12::int,
                  introspect = $13::bool, updated_at = now()
                WHERE tenant_id = $1 AND id = $2
                RETURNING \(Self.clientColumns)
                """, parameters)
            guard let row = result.rows.first else {
                throw GatewayError.notFound("Client '\(client.id)' does not exist in tenant '\(client.tenant)'.")
            }
            try await connection.query(
                """
                UPDATE connections SET access_token = NULL, issued_at = NULL, expires_at = NULL, fetched_at = NULL
                WHERE tenant_id = $1 AND client_id = $2
                """, [client.tenant, client.id])
            try await Self.audit(
                connection, tenant: client.tenant, actor: actor, action: "client.update",
                target: "client/\(client.id)")
            try await Self.notify(connection, .tokensStale(tenant: client.tenant, client: client.id, connection: nil))
            return try self.decodeClient(row)
        }
    }

    /// Deletes a client with its connections and audits it. `deleted` is false when there was none; `revoke` lists
    /// the refresh tokens to revoke at Salesforce once the transaction has committed.
    public func deleteClient(tenant: String, id: String, actor: String) async throws -> (
        deleted: Bool, revoke: [RevocationTarget]
    ) {
        try await pool.transaction { connection in
            let targets = try await self.revocationTargets(
                connection, where: "c.tenant_id = $1 AND c.id = $2", [tenant, id])
            let result = try await connection.query(
                "DELETE FROM clients WHERE tenant_id = $1 AND id = $2", [tenant, id])
            guard result.affectedRows == 1 else { return (false, []) }
            try await Self.audit(
                connection, tenant: tenant, actor: actor, action: "client.delete", target: "client/\(id)")
            try await Self.notify(connection, .tokensStale(tenant: tenant, client: id, connection: nil))
            return (true, targets)
        }
    }

    // MARK: Connections

    /// The connections of a client, as the admin API lists them.
    public func connections(tenant: String, client: String) async throws -> [Connection] {
        let result = try await pool.query(
            """
            SELECT id, user_id, org_id, instance_url, status, tgw_iso(created_at) AS created_at,
              tgw_iso(refreshed_at) AS refreshed_at,
              CASE WHEN access_token IS NULL THEN NULL ELSE tgw_iso(expires_at) END AS expires_at,
              last_error, tgw_iso(last_error_at) AS last_error_at
            FROM connections WHERE tenant_id = $1 AND client_id = $2 ORDER BY id
            """, [tenant, client])
        return result.rows.map { row in
            var lastError: (at: String, error: GatewayError)?
            if let text = row["last_error"], let at = row["last_error_at"], let error = Self.decodeFailure(text) {
                lastError = (at, error)
            }
            return Connection(
                id: row["id"] ?? "", userID: row["user_id"], orgID: row["org_id"], instanceURL: row["instance_url"],
                status: row["status"] ?? "active", createdAt: row["created_at"] ?? "",
                refreshedAt: row["refreshed_at"], expiresAt: row["expires_at"], lastError: lastError)
        }
    }

    /// Deletes a connection and audits it. `deleted` is false when there was none; `revoke` holds its refresh token
    /// to revoke at Salesforce once the transaction has committed.
    public func deleteConnection(tenant: String, client: String, id: String, actor: String) async throws
        -> (deleted: Bool, revoke: [RevocationTarget])
    {
        try await pool.transaction { connection in
            let targets = try await self.revocationTargets(
                connection, where: "c.tenant_id = $1 AND c.id = $2 AND n.id = $3", [tenant, client, id])
            let result = try await connection.query(
                "DELETE FROM connections WHERE tenant_id = $1 AND client_id = $2 AND id = $3", [tenant, client, id])
            guard result.affectedRows == 1 else { return (false, []) }
            try await Self.audit(
                connection, tenant: tenant, actor: actor, action: "connection.delete",
                target: "client/\(client)/connection/\(id)")
            try await Self.notify(connection, .tokensStale(tenant: tenant, client: client, connection: id))
            return (true, targets)
        }
    }

    func revocationTargets(_ connection: PostgresConnection, where condition: String, _ parameters: [String?])
        async throws
        -> [RevocationTarget]
    {
        let result = try await connection.query(
            """
            SELECT c.tenant_id, c.id AS client, n.id AS connection, c.login_url, n.refresh_token
            FROM connections n JOIN clients c ON c.tenant_id = n.tenant_id AND c.id = n.client_id
            WHERE \(condition) AND n.refresh_token IS NOT NULL
            """, parameters)
        return result.rows.compactMap { row in
            guard let sealed = row["refresh_token"], let tenant = row["tenant_id"], let client = row["client"],
                let id = row["connection"], let loginURL = row["login_url"],
                let token = try? keyring.open(
                    sealed, for: .init(field: "refresh_token", tenant: tenant, client: client, connection: id))
            else { return nil }
            return RevocationTarget(endpoint: Client.revokeEndpoint(loginURL: loginURL), token: token)
        }
    }

    // MARK: Audit

    static func audit(
        _ connection: PostgresConnection, tenant: String, actor: String, action: String, target: String,
        count: Int? = nil
    ) async throws {
        try await connection.query(
            "INSERT INTO audit_events (tenant_id, actor, action, target, count) VALUES ($1, $2, $3, $4, $5::int)",
            [tenant, actor, action, target, count.map(String.init)])
    }

    /// At most `limit` audit events of `tenant`, newest first, with ids below `before` when given.
    public func auditEvents(tenant: String, limit: Int, before: Int?) async throws -> [AuditEvent] {
        let result = try await pool.query(
            """
            SELECT id, tgw_iso(at) AS at, actor, action, target, count FROM audit_events
            WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
            ORDER BY id DESC LIMIT $3::int
            """, [tenant, before.map(String.init), String(limit)])
        return result.rows.map {
            AuditEvent(
                id: Int($0["id"] ?? "") ?? 0, at: $0["at"] ?? "", actor: $0["actor"] ?? "", action: $0["action"] ?? "",
                target: $0["target"] ?? "", count: $0["count"].flatMap { Int($0) })
        }
    }
}
