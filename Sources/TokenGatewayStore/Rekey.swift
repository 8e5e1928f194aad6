import Codecs
import Postgres
import TokenGatewayDomain

/// `token-gateway rekey`: re-seals every secret under the first key of the keyring, in one transaction, so the
/// older keys can be dropped afterwards. Values already under the first key are left as they are.
public enum Rekey {
    /// Returns how many values were re-sealed.
    public static func run(pool: PostgresPool, keyring: Keyring) async throws -> Int {
        try await pool.transaction { db in
            var count = 0
            func reseal(_ sealed: String?, _ binding: Keyring.Binding) throws -> String? {
                guard let sealed, Keyring.keyID(of: sealed) != keyring.primary.id else { return nil }
                count += 1
                return try keyring.seal(try keyring.open(sealed, for: binding), for: binding)
            }
            for row in try await db.query("SELECT tenant_id, id, client_secret, private_key FROM clients FOR UPDATE")
                .rows
            {
                let tenant = row["tenant_id"] ?? ""
                let id = row["id"] ?? ""
                let secret = try reseal(row["client_secret"], .init(field: "client_secret", tenant: tenant, client: id))
                let key = try reseal(row["private_key"], .init(field: "private_key", tenant: tenant, client: id))
                if secret != nil || key != nil {
                    try await db.query(
                        """
                        UPDATE clients SET client_secret = coalesce($3, client_secret), private_key = coalesce($4, private_key)
                        WHERE tenant_id = $1 AND id = $2
                        """, [tenant, id, secret, key])
                }
            }
            for row in try await db.query(
                "SELECT tenant_id, client_id, id, refresh_token, access_token FROM connections FOR UPDATE"
            ).rows {
                let tenant = row["tenant_id"] ?? ""
                let client = row["client_id"] ?? ""
                let id = row["id"] ?? ""
                let refresh = try reseal(
                    row["refresh_token"], .init(field: "refresh_token", tenant: tenant, client: client, connection: id))
                let access = try reseal(
                    row["access_token"], .init(field: "access_token", tenant: tenant, client: client, connection: id))
                if refresh != nil || access != nil {
                    try await db.query(
                        """
                        UPDATE connections SET refresh_token = coalesce($4, refresh_token), access_token = coalesce($5, access_token)
                        WHERE tenant_id = $1 AND client_id = $2 AND id = $3
                        """, [tenant, client, id, refresh, access])
                }
            }
            for row in try await db.query(
                "SELECT state_hash, tenant_id, client_id, code_verifier FROM authorize_states WHERE used_at IS NULL FOR UPDATE"
            ).rows {
                let hash = row["state_hash"] ?? ""
                if let verifier = try reseal(
                    row["code_verifier"],
                    .init(
                        field: "code_verifier", tenant: row["tenant_id"] ?? "", client: row["client_id"] ?? "",
                        connection: hash))
                {
                    try await db.query(
                        "UPDATE authorize_states SET code_verifier = $2 WHERE state_hash = $1", [hash, verifier])
                }
            }
            for row in try await db.query("SELECT id, tenant_id, secret FROM webhooks FOR UPDATE").rows {
                let id = row["id"] ?? ""
                if let secret = try reseal(row["secret"], .webhookSecret(tenant: row["tenant_id"] ?? "", id: id)) {
                    try await db.query("UPDATE webhooks SET secret = $2 WHERE id = $1", [id, secret])
                }
            }
            return count
        }
    }
}
