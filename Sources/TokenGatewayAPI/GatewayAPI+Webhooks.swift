import Codecs
import HTTPServer
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// The webhook routes (admin token): create (the secret is shown once), list, delete.
extension GatewayAPI {
    static func write(_ webhook: Webhook, secret: String? = nil, into writer: inout JSONWriter) {
        writer.field("id", webhook.id)
        writer.field("url", webhook.url)
        writer.field("events", webhook.events.map(\.rawValue))
        if let secret { writer.field("secret", secret) }
        writer.field("created_at", webhook.createdAt)
        if let last = webhook.lastDelivery {
            writer.beginObject("last_delivery")
            writer.field("at", last.at)
            writer.field("status", last.status)
            writer.field("error", last.error)
            writer.endObject()
        } else {
            writer.field("last_delivery", nil as String?)
        }
    }

    func createWebhook(_ context: RequestContext) throws -> Reply {
        let tenant = try tenantParameter(context)
        let (url, events) = try WebhookValidation.create(
            body: try body(context), allowList: configuration.webhookAllowList)
        return .later { [self] in
            let secret = WebhookSecret.generate()
            let webhook = try await store.createWebhook(
                tenant: tenant, url: url, events: events, secret: secret, actor: context.caller.actor)
            var response = Self.json(201) { Self.write(webhook, secret: secret, into: &$0) }
            response.headers.replaceOrAdd("Cache-Control", "no-store")
            return response
        }
    }

    func listWebhooks(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        try await requireTenant(tenant)
        return Self.list("webhooks", try await store.webhooks(tenant: tenant)) { Self.write($0, into: &$1) }
    }

    func deleteWebhook(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        let id = context.parameter("webhook")
        guard WebhookValidation.isWebhookID(id),
            try await store.deleteWebhook(tenant: tenant, id: id, actor: context.caller.actor)
        else {
            try await requireTenant(tenant)
            throw GatewayError.notFound("Webhook '\(id.prefix(64))' does not exist in tenant '\(tenant)'.")
        }
        return Self.noContent
    }
}

/// Checks a webhook's body: `url` within the allow-list, `events` a non-empty list of known names (default: all).
public enum WebhookValidation {
    static let fields: Set<String> = ["url", "events"]

    /// The URL and events of a POST body; the message names the field.
    public static func create(body: RequestBody, allowList: UpstreamAllowList?) throws(GatewayError)
        -> (url: String, events: [WebhookEventType])
    {
        try body.only(fields)
        let url = try body.requiredString("url", length: 1...2048)
        try check(url: url, allowList: allowList)
        return (url, try events(body))
    }

    /// With an allow-list, the URL must match one of its patterns; without, it must be `https` on a DNS name that
    /// is not `localhost` (no IP literal), so nobody can aim deliveries at the gateway's own network by default.
    public static func check(url text: String, allowList: UpstreamAllowList?) throws(GatewayError) {
        let url = try ClientValidation.url(text, "url")
        guard url.scheme == "https" || url.scheme == "http", !text.contains("#") else {
            throw .invalidRequest("url: must be an absolute http(s) URL without a fragment.")
        }
        if let allowList {
            guard allowList.allows(url) else {
                throw .invalidRequest(
                    "url: \(url.scheme)://\(url.host)\(url.port.map { ":\($0)" } ?? "") is not in TOKEN_GATEWAY_WEBHOOK_ALLOWLIST."
                )
            }
            return
        }
        guard url.scheme == "https", HostName.isDNSName(url.host), url.host != "localhost",
            !url.host.hasSuffix(".localhost")
        else {
            throw .invalidRequest(
                "url: must be https on a DNS name (not an IP address, not localhost); TOKEN_GATEWAY_WEBHOOK_ALLOWLIST can allow others."
            )
        }
    }

    /// `events`: absent means all three; otherwise a non-empty array of known names (repeats are kept once).
    static func events(_ body: RequestBody) throws(GatewayError) -> [WebhookEventType] {
        guard let value = body.members["events"] else { return WebhookEventType.allCases }
        guard case .array(let items) = value else {
            throw .invalidRequest("events: must be an array of event names (\(WebhookEventType.names)).")
        }
        guard !items.isEmpty else {
            throw .invalidRequest("events: must name at least one of \(WebhookEventType.names).")
        }
        var events: Set<WebhookEventType> = []
        for item in items {
            guard case .string(let name) = item, let event = WebhookEventType(rawValue: name) else {
                throw .invalidRequest("events: each entry must be one of \(WebhookEventType.names).")
            }
            events.insert(event)
        }
        return WebhookEventType.allCases.filter(events.contains)
    }

    /// `wh_` + 16 hex digits: anything else names no webhook.
    static func isWebhookID(_ id: String) -> Bool {
        id.utf8.count == 19 && id.hasPrefix("wh_")
            && id.utf8.dropFirst(3).allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
