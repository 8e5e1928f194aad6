import Codecs
import Postgres
import TokenGatewayDomain

/// A tenant's webhook as the admin API lists it (never its secret).
public struct Webhook: Sendable, Equatable {
    /// The webhook's id.
    public var id: String
    /// The tenant that owns it.
    public var tenant: String
    /// The receiver's URL.
    public var url: String
    /// The event types it is sent.
    public var events: [WebhookEventType]
    /// When it was created (RFC 3339).
    public var createdAt: String
    /// Its latest delivery attempt; nil before the first.
    public var lastDelivery: LastDelivery?

    /// The outcome of the webhook's latest delivery attempt.
    public struct LastDelivery: Sendable, Equatable {
        /// When the attempt was made (RFC 3339).
        public var at: String
        /// The receiver's HTTP status; nil when it did not answer.
        public var status: Int?
        /// What went wrong; nil after a 2xx answer.
        public var error: String?
    }
}

/// A delivery one replica has claimed: everything needed to send it with no database connection held.
public struct WebhookJob: Sendable {
    /// The delivery's id.
    public var deliveryID: String
    /// The webhook it is for.
    public var webhookID: String
    /// Where to send it.
    public var url: String
    /// The signing secret, opened; nil when no key of the keyring opens it (the attempt then fails, saying so).
    public var secret: String?
    /// The event's id (`webhook-id`), the same on every attempt.
    public var eventID: String
    /// The JSON body to send and sign, byte for byte.
    public var payload: String
    /// The delivery as the claim left it, times on the database's clock.
    public var delivery: WebhookDelivery
    /// The database's clock when the claim was made.
    public var claimedAt: Double
}

/// Webhooks, their outbox (`webhook_deliveries`: one row per event and subscribed webhook, written in the same
/// transaction as the change it reports) and the claims of the replicas that deliver it.
extension GatewayStore {
    static let webhookColumns = """
        id, tenant_id, url, events, tgw_iso(created_at) AS created_at, tgw_iso(last_delivery_at) AS last_delivery_at,
        last_delivery_status, last_delivery_error
        """

    // MARK: The admin API

    /// Stores a webhook with its secret sealed and bound to the row; `404` for an unknown tenant.
    public func createWebhook(tenant: String, url: String, events: [WebhookEventType], secret: String, actor: String)
        async throws -> Webhook
    {
        let id = "wh_" + WebhookSecret.randomHex(bytes: 8)
        let sealed = try keyring.seal(secret, for: .webhookSecret(tenant: tenant, id: id))
        return try await pool.transaction { db in
            guard try await db.query("SELECT 1 FROM tenants WHERE id = $1 FOR SHARE", [tenant]).rows.count == 1
            else { throw GatewayError.notFound("Tenant '\(tenant)' does not exist.") }
            let result = try await db.query(
                """
                INSERT INTO webhooks (id, tenant_id, url, events, secret) VALUES ($1, $2, $3, $4::text[], $5)
                RETURNING \(Self.webhookColumns)
                """, [id, tenant, url, Self.arrayLiteral(events.map(\.rawValue)), sealed])
            try await Self.audit(db, tenant: tenant, actor: actor, action: "webhook.create", target: "webhook/\(id)")
            guard let row = result.rows.first else { throw GatewayError.notFound("Webhook vanished.") }
            return Self.decodeWebhook(row)
        }
    }

    /// The webhooks of `tenant`, oldest first.
    public func webhooks(tenant: String) async throws -> [Webhook] {
        let result = try await pool.query(
            "SELECT \(Self.webhookColumns) FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id", [tenant])
        return result.rows.map(Self.decodeWebhook)
    }

    /// Deletes a webhook with the deliveries it still had pending.
    public func deleteWebhook(tenant: String, id: String, actor: String) async throws -> Bool {
        try await pool.transaction { db in
            let result = try await db.query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2", [tenant, id])
            guard result.affectedRows == 1 else { return false }
            try await Self.audit(db, tenant: tenant, actor: actor, action: "webhook.delete", target: "webhook/\(id)")
            return true
        }
    }

    static func decodeWebhook(_ row: PostgresRow) -> Webhook {
        var last: Webhook.LastDelivery?
        if let at = row["last_delivery_at"] {
            last = Webhook.LastDelivery(
                at: at, status: row["last_delivery_status"].flatMap { Int($0) }, error: row["last_delivery_error"])
        }
        let events = (row["events"] ?? "").trimmingCharacters(in: ["{", "}"]).split(separator: ",")
            .compactMap { WebhookEventType(rawValue: String($0)) }
        return Webhook(
            id: row["id"] ?? "", tenant: row["tenant_id"] ?? "", url: row["url"] ?? "", events: events,
            createdAt: row["created_at"] ?? "", lastDelivery: last)
    }

    /// A PostgreSQL array literal of names made of `[a-z._]` only (nothing to quote).
    static func arrayLiteral(_ names: [String]) -> String { "{" + names.joined(separator: ",") + "}" }

    // MARK: Raising events (inside the transaction of the change)

    /// Writes into the outbox the events that a connection's change from status `before` to `after` (and the
    /// failure that caused it, if any) raises, one row per subscribed webhook of the tenant, and wakes the
    /// dispatchers when the transaction commits. `client.rejected` is raised at most once per client per hour,
    /// and only when some webhook of the tenant subscribes to it.
    func raiseEvents(
        _ db: PostgresConnection, _ key: ConnectionKey, before: String?, after: String?, failure: GatewayError?
    ) async throws {
        for type in WebhookEventType.raised(before: before, after: after, failure: failure) {
            if type == .clientRejected {
                // The row lock on the client's stamp makes the hour hold across replicas.
                let stamped = try await db.query(
                    """
                    INSERT INTO client_rejections (tenant_id, client_id, raised_at)
                    SELECT $1, $2, now() WHERE EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = $1 AND $3 = ANY(events))
                    ON CONFLICT (tenant_id, client_id) DO UPDATE SET raised_at = now()
                      WHERE client_rejections.raised_at <= now() - interval '1 hour'
                    """, [key.tenant, key.client, type.rawValue])
                guard stamped.affectedRows == 1 else { continue }
            }
            let event = WebhookEvent(
                type: type, connection: key, error: type == .recovered ? nil : failure, at: WallClock.now)
            let inserted = try await db.query(
                """
                INSERT INTO webhook_deliveries (webhook_id, event_id, stream, payload)
                SELECT id, $3, $4, $5 FROM webhooks WHERE tenant_id = $1 AND $2 = ANY(events) ORDER BY id
                """, [key.tenant, type.rawValue, event.id, event.stream, event.body])
            if inserted.affectedRows > 0 { try await Self.notify(db, .webhookPending) }
        }
    }

    /// Records that Salesforce refused the client itself on a call outside any refresh transaction (`/exchange`,
    /// `/callback`): raises `client.rejected` under the same once-an-hour rule.
    public func clientRejected(_ key: ConnectionKey, failure: GatewayError) async throws {
        try await pool.transaction { db in
            try await self.raiseEvents(db, key, before: nil, after: nil, failure: failure)
        }
    }

    // MARK: Delivering

    /// Claims the oldest due delivery that heads its stream (no earlier delivery of the same webhook and
    /// connection is left), skipping rows another replica is claiming (`SKIP LOCKED`) and webhooks in `busy`;
    /// nil when none is due. The claim lasts one attempt plus a margin, so a replica that dies mid-attempt only
    /// delays the delivery.
    public func claimDelivery(owner: String, excluding busy: [String]) async throws -> WebhookJob? {
        let claim = WebhookDelivery.attemptTimeout + WebhookDelivery.claimMargin
        let result = try await pool.query(
            """
            UPDATE webhook_deliveries d SET attempts = d.attempts + 1, claimed_by = $1,
              claimed_until = now() + make_interval(secs => $2::float8)
            FROM webhooks w
            WHERE w.id = d.webhook_id AND d.id = (
              SELECT c.id FROM webhook_deliveries c
              WHERE c.next_attempt_at <= now() AND (c.claimed_until IS NULL OR c.claimed_until <= now())
                AND NOT (c.webhook_id = ANY($3::text[]))
                AND NOT EXISTS (
                  SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = c.webhook_id AND e.stream = c.stream
                    AND e.id < c.id)
              ORDER BY c.next_attempt_at, c.id LIMIT 1
              FOR UPDATE SKIP LOCKED)
            RETURNING d.id, d.webhook_id, d.event_id, d.payload, d.attempts, w.tenant_id, w.url, w.secret,
              extract(epoch FROM d.created_at)::float8 AS created_at, extract(epoch FROM now())::float8 AS now
            """, [owner, String(claim), Self.arrayLiteral(busy)])
        guard let row = result.rows.first, let id = row["id"], let webhook = row["webhook_id"],
            let sealed = row["secret"], let now = row["now"].flatMap(Double.init)
        else { return nil }
        // A secret that does not open fails the attempt (recorded in last_delivery), like any other failure.
        let secret = try? keyring.open(sealed, for: .webhookSecret(tenant: row["tenant_id"] ?? "", id: webhook))
        let delivery = WebhookDelivery(
            createdAt: row["created_at"].flatMap(Double.init) ?? now, attempts: Int(row["attempts"] ?? "") ?? 1,
            state: .inFlight(owner: owner, until: now + claim))
        return WebhookJob(
            deliveryID: id, webhookID: webhook, url: row["url"] ?? "", secret: secret, eventID: row["event_id"] ?? "",
            payload: row["payload"] ?? "", delivery: delivery, claimedAt: now)
    }

    /// Applies what `WebhookDelivery.finish` decided, only while `owner` still holds the claim, and records the
    /// attempt as the webhook's `last_delivery`.
    public func finishDelivery(
        _ job: WebhookJob, owner: String, action: WebhookDelivery.Action, outcome: WebhookDelivery.Outcome
    ) async throws {
        let status: String? = if case .answered(let code) = outcome { String(code) } else { nil }
        var error = WebhookDelivery.errorText(outcome)
        guard action != .ignore else { return }
        if action == .giveUp { error = "gave up 24 h after the event; last attempt: \(error ?? "")" }
        try await pool.transaction { db in
            // The webhook's row first, then the delivery's: the order a webhook's delete locks them in.
            try await db.query(
                """
                UPDATE webhooks SET last_delivery_at = now(), last_delivery_status = $2::int, last_delivery_error = $3
                WHERE id = $1 AND EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $4::bigint AND claimed_by = $5)
                """, [job.webhookID, status, error, job.deliveryID, owner])
            switch action {
            case .ignore: return
            case .delivered, .giveUp:
                try await db.query(
                    "DELETE FROM webhook_deliveries WHERE id = $1::bigint AND claimed_by = $2", [job.deliveryID, owner])
            case .retry(let seconds):
                try await db.query(
                    """
                    UPDATE webhook_deliveries SET claimed_by = NULL, claimed_until = NULL,
                      next_attempt_at = now() + make_interval(secs => $3::float8)
                    WHERE id = $1::bigint AND claimed_by = $2
                    """, [job.deliveryID, owner, String(seconds)])
            }
        }
    }

    /// Deliveries not yet delivered or given up, in flight included, across every replica.
    public func pendingDeliveries() async throws -> Int {
        let result = try await pool.query("SELECT count(*) AS n FROM webhook_deliveries")
        return Int(result.rows.first?["n"] ?? "") ?? 0
    }
}

extension Keyring.Binding {
    /// The binding of webhook `id`'s signing secret.
    static func webhookSecret(tenant: String, id: String) -> Keyring.Binding {
        Keyring.Binding(field: "webhook_secret", tenant: tenant, client: id)
    }
}
