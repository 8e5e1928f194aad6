import Codecs
import TokenGatewayDomain

/// The one message replicas exchange through PostgreSQL's `NOTIFY` on the channel `tgw`, as a small JSON object.
///
/// Written in the same transaction as the change it announces, so a replica hears of a change only once it is
/// committed. Every replica also hears its own messages; `origin` lets it skip what it has already applied.
public enum GatewayNotification: Sendable, Equatable {
    /// An API key was deleted: stop accepting it at once.
    case keyDeleted(id: String)
    /// A tenant was deleted with its keys, clients and connections.
    case tenantDeleted(tenant: String)
    /// Cached tokens of a client (or of one connection of it) are stale: drop them.
    case tokensStale(tenant: String, client: String, connection: String?)
    /// A refresh lease ended (a token was stored, or the attempt failed): waiters re-read the row. `forced` when
    /// the caller's old token was rejected, so other replicas drop their copy of it.
    case leaseEnded(ConnectionKey, origin: String, forced: Bool)
    /// Webhook deliveries were written to the outbox: dispatchers look for due ones now instead of at their next poll.
    case webhookPending

    /// The channel every replica listens on.
    public static let channel = "tgw"

    /// The payload text.
    public var payload: String {
        var writer = JSONWriter()
        writer.beginObject()
        switch self {
        case .keyDeleted(let id):
            writer.field("type", "key_deleted")
            writer.field("key", id)
        case .tenantDeleted(let tenant):
            writer.field("type", "tenant_deleted")
            writer.field("tenant", tenant)
        case .tokensStale(let tenant, let client, let connection):
            writer.field("type", "tokens_stale")
            writer.field("tenant", tenant)
            writer.field("client", client)
            writer.field("connection", connection)
        case .leaseEnded(let key, let origin, let forced):
            writer.field("type", "lease_ended")
            writer.field("tenant", key.tenant)
            writer.field("client", key.client)
            writer.field("connection", key.connection)
            writer.field("origin", origin)
            writer.field("forced", forced)
        case .webhookPending:
            writer.field("type", "webhook_pending")
        }
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Reads a payload; nil for anything that is not a well-formed message of a known type.
    public init?(payload: String) {
        guard let object = try? JSONValue.parse(Array(payload.utf8)), let type = object["type"]?.stringValue else {
            return nil
        }
        func text(_ name: String) -> String? {
            guard let value = object[name]?.stringValue, !value.isEmpty else { return nil }
            return value
        }
        switch type {
        case "key_deleted":
            guard let id = text("key") else { return nil }
            self = .keyDeleted(id: id)
        case "tenant_deleted":
            guard let tenant = text("tenant") else { return nil }
            self = .tenantDeleted(tenant: tenant)
        case "tokens_stale":
            guard let tenant = text("tenant"), let client = text("client") else { return nil }
            self = .tokensStale(tenant: tenant, client: client, connection: text("connection"))
        case "lease_ended":
            guard let tenant = text("tenant"), let client = text("client"), let connection = text("connection"),
                let origin = text("origin"), case .bool(let forced)? = object["forced"]
            else { return nil }
            self = .leaseEnded(
                ConnectionKey(tenant: tenant, client: client, connection: connection), origin: origin, forced: forced)
        case "webhook_pending":
            self = .webhookPending
        default:
            return nil
        }
    }
}
