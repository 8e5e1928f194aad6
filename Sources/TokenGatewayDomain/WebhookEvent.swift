import Codecs
import Crypto
import Foundation

/// The events a tenant's webhook can subscribe to: each tells ops that a person must act, or no longer must.
public enum WebhookEventType: String, Sendable, CaseIterable {
    /// A connection's status became `reauthorization_required`.
    case reauthorizationRequired = "connection.reauthorization_required"
    /// A connection that was `reauthorization_required` is `active` again.
    case recovered = "connection.recovered"
    /// Salesforce refused the client itself (`client_rejected`); at most one per client per hour.
    case clientRejected = "client.rejected"

    /// The names, for messages.
    public static let names = allCases.map(\.rawValue).joined(separator: ", ")

    /// Which events a change of a connection's status (and the failure that caused it, if any) raises. Pure: the
    /// store calls it inside the transaction that writes the change. A status that stays what it was raises no
    /// status event, so a connection failing again while it already needs a person is reported once.
    /// `client.rejected` is raised for every such failure here; the store then keeps it to one per client per hour.
    public static func raised(before: String?, after: String?, failure: GatewayError?) -> [WebhookEventType] {
        var events: [WebhookEventType] = []
        if after == "reauthorization_required" && before != nil && before != after {
            events.append(.reauthorizationRequired)
        }
        if after == "active" && before == "reauthorization_required" { events.append(.recovered) }
        if failure?.code == .clientRejected { events.append(.clientRejected) }
        return events
    }
}

/// One event, as every subscribed webhook receives it: the delivery body is built once and stored, so every
/// attempt sends (and signs) exactly the same bytes.
public struct WebhookEvent: Sendable, Equatable {
    /// `evt_` + 24 hex digits; also the `webhook-id` header, the same on every retry.
    public var id: String
    /// What happened to the connection.
    public var type: WebhookEventType
    /// Seconds since the epoch when the gateway saw the change.
    public var at: Double
    /// The connection it happened to.
    public var connection: ConnectionKey
    /// The failure behind it (`nil` for `connection.recovered`).
    public var error: GatewayError?

    /// A new event with a fresh id.
    public init(type: WebhookEventType, connection: ConnectionKey, error: GatewayError?, at: Double) {
        self.id = "evt_" + WebhookSecret.randomHex(bytes: 12)
        self.type = type
        self.at = at
        self.connection = connection
        self.error = error
    }

    /// Deliveries of one stream reach a webhook in the order they were raised: one stream per connection.
    public var stream: String { "\(connection.tenant)/\(connection.client)/\(connection.connection)" }

    /// The delivery body: `{"id", "type", "at", "tenant", "client", "connection", "error"}`.
    public var body: String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("id", id)
        writer.field("type", type.rawValue)
        writer.field("at", Timestamp.rfc3339(at))
        writer.field("tenant", connection.tenant)
        writer.field("client", connection.client)
        writer.field("connection", connection.connection)
        if let error {
            writer.beginObject("error")
            writer.field("error", error.code.rawValue)
            writer.field("message", error.message)
            if let upstream = error.upstream { writer.field("upstream", upstream) }
            writer.endObject()
        } else {
            writer.field("error", nil as String?)
        }
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

/// A webhook's signing secret and the Standard Webhooks signature made with it.
public enum WebhookSecret {
    static let prefix = "whsec_"

    /// `whsec_` + base64 of 32 random bytes.
    public static func generate() -> String {
        prefix + Data(randomBytes(32)).base64EncodedString()
    }

    /// The `webhook-signature` header: `v1,` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), the key being
    /// the base64-decoded part of `secret` after `whsec_`. Nil for a secret of another shape.
    public static func signature(secret: String, id: String, timestamp: Int, body: String) -> String? {
        guard secret.hasPrefix(prefix), let key = Data(base64Encoded: String(secret.dropFirst(prefix.count))),
            !key.isEmpty
        else { return nil }
        let message = Array("\(id).\(timestamp).\(body)".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in generator.next() }
    }

    /// `count` random bytes from the system generator, as lowercase hex.
    public static func randomHex(bytes count: Int) -> String {
        Hex.encode(randomBytes(count))
    }
}
