import Codecs
import Postgres
import TokenGatewayDomain

/// The database schema, versioned and embedded in the binary. Applied at start (under an advisory lock) and by
/// `token-gateway migrate`. Secret columns hold `keyid:base64` sealed values, never clear text.
public enum GatewaySchema {
    /// Every migration in version order; a released one is never edited, only followed by a new one.
    public static let migrations: [PostgresMigration] = [
        PostgresMigration(
            version: 1, name: "initial",
            sql: """
                CREATE FUNCTION tgw_iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
                  $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
                CREATE TABLE tenants (
                  id text PRIMARY KEY,
                  name text,
                  created_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE TABLE api_keys (
                  id text PRIMARY KEY,
                  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                  name text,
                  key_hash text NOT NULL,
                  created_at timestamptz NOT NULL DEFAULT now(),
                  last_used_at timestamptz
                );
                CREATE INDEX api_keys_tenant ON api_keys(tenant_id);
                CREATE TABLE clients (
                  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                  id text NOT NULL,
                  grant_type text NOT NULL,
                  login_url text NOT NULL,
                  client_id text NOT NULL,
                  client_secret text,
                  private_key text,
                  redirect_uri text,
                  scopes text,
                  username text,
                  audience text,
                  token_ttl_seconds int NOT NULL,
                  created_at timestamptz NOT NULL DEFAULT now(),
                  updated_at timestamptz NOT NULL DEFAULT now(),
                  PRIMARY KEY (tenant_id, id)
                );
                CREATE TABLE connections (
                  tenant_id text NOT NULL,
                  client_id text NOT NULL,
                  id text NOT NULL,
                  user_id text,
                  org_id text,
                  instance_url text,
                  status text NOT NULL DEFAULT 'active',
                  refresh_token text,
                  access_token text,
                  identity_url text,
                  scope text,
                  token_type text,
                  issued_at timestamptz,
                  expires_at timestamptz,
                  fetched_at timestamptz,
                  created_at timestamptz NOT NULL DEFAULT now(),
                  refreshed_at timestamptz,
                  PRIMARY KEY (tenant_id, client_id, id),
                  FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, id) ON DELETE CASCADE
                );
                CREATE TABLE authorize_states (
                  state_hash text PRIMARY KEY,
                  tenant_id text NOT NULL,
                  client_id text NOT NULL,
                  connection_id text NOT NULL,
                  code_verifier text NOT NULL,
                  redirect_uri text NOT NULL,
                  expires_at timestamptz NOT NULL,
                  used_at timestamptz,
                  FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, id) ON DELETE CASCADE
                );
                CREATE TABLE audit_events (
                  id bigserial PRIMARY KEY,
                  tenant_id text NOT NULL,
                  at timestamptz NOT NULL DEFAULT now(),
                  actor text NOT NULL,
                  action text NOT NULL,
                  target text NOT NULL,
                  count int
                );
                CREATE INDEX audit_events_tenant ON audit_events(tenant_id, id DESC);
                """),
        PostgresMigration(
            version: 2, name: "refresh leases",
            sql: """
                ALTER TABLE connections
                  ADD COLUMN lease_owner text,
                  ADD COLUMN lease_fence bigint NOT NULL DEFAULT 0,
                  ADD COLUMN lease_until timestamptz,
                  ADD COLUMN last_error text,
                  ADD COLUMN last_error_at timestamptz;
                """),
        PostgresMigration(
            version: 3, name: "token lifecycle",
            sql: """
                ALTER TABLE clients ADD COLUMN introspect boolean NOT NULL DEFAULT true;
                ALTER TABLE connections
                  ADD COLUMN refresh_token_used_at timestamptz,
                  ADD COLUMN keepalive_after timestamptz,
                  ADD COLUMN background_failures int NOT NULL DEFAULT 0;
                UPDATE connections SET refresh_token_used_at = coalesce(refreshed_at, created_at);
                CREATE INDEX connections_keepalive ON connections (refresh_token_used_at)
                  WHERE status = 'active' AND refresh_token IS NOT NULL;
                """),
        PostgresMigration(
            version: 4, name: "webhooks",
            sql: """
                CREATE TABLE webhooks (
                  id text PRIMARY KEY,
                  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                  url text NOT NULL,
                  events text[] NOT NULL,
                  secret text NOT NULL,
                  created_at timestamptz NOT NULL DEFAULT now(),
                  last_delivery_at timestamptz,
                  last_delivery_status int,
                  last_delivery_error text
                );
                CREATE INDEX webhooks_tenant ON webhooks(tenant_id);
                CREATE TABLE webhook_deliveries (
                  id bigserial PRIMARY KEY,
                  webhook_id text NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
                  event_id text NOT NULL,
                  stream text NOT NULL,
                  payload text NOT NULL,
                  created_at timestamptz NOT NULL DEFAULT now(),
                  next_attempt_at timestamptz NOT NULL DEFAULT now(),
                  attempts int NOT NULL DEFAULT 0,
                  claimed_by text,
                  claimed_until timestamptz
                );
                CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
                CREATE INDEX webhook_deliveries_stream ON webhook_deliveries (webhook_id, stream, id);
                -- No foreign key: checking one would lock the client's row after the connection's (a refresh
                -- failure holds that first), the opposite order of a client's delete.
                CREATE TABLE client_rejections (
                  tenant_id text NOT NULL,
                  client_id text NOT NULL,
                  raised_at timestamptz NOT NULL,
                  PRIMARY KEY (tenant_id, client_id)
                );
                """),
    ]

    /// The newest schema version this binary knows.
    public static var latestVersion: Int { migrations.map(\.version).max() ?? 0 }
}
