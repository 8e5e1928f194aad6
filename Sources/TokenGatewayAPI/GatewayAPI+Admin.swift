import Codecs
import HTTPServer
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// The admin routes: tenants, API keys, clients, connections and the audit log.
extension GatewayAPI {
    /// `{"<name>": [ ...items written by write... ]}` with status 200.
    static func list<Item>(_ name: String, _ items: [Item], _ write: (Item, inout JSONWriter) -> Void) -> HTTPResponse {
        json(200) { writer in
            writer.beginArray(name)
            for item in items {
                writer.beginObject()
                write(item, &writer)
                writer.endObject()
            }
            writer.endArray()
        }
    }

    func tenantParameter(_ context: RequestContext) throws(GatewayError) -> String {
        let tenant = context.parameter("tenant")
        guard ResourceID.isValid(tenant) else { throw .notFound("Tenant '\(tenant.prefix(63))' does not exist.") }
        return tenant
    }

    func clientParameter(_ context: RequestContext) throws(GatewayError) -> String {
        let client = context.parameter("client")
        guard ResourceID.isValid(client) else { throw .notFound("Client '\(client.prefix(63))' does not exist.") }
        return client
    }

    func requireTenant(_ tenant: String) async throws {
        guard try await store.tenant(tenant) != nil else {
            throw GatewayError.notFound("Tenant '\(tenant)' does not exist.")
        }
    }

    func requireClient(_ tenant: String, _ id: String) async throws -> Client {
        guard let client = try await store.client(tenant: tenant, id: id) else {
            try await requireTenant(tenant)
            throw GatewayError.notFound("Client '\(id)' does not exist in tenant '\(tenant)'.")
        }
        return client
    }

    // MARK: Tenants

    static func write(_ tenant: Tenant, into writer: inout JSONWriter) {
        writer.field("id", tenant.id)
        writer.field("name", tenant.name)
        writer.field("created_at", tenant.createdAt)
    }

    func createTenant(_ context: RequestContext) throws -> Reply {
        let body = try body(context)
        try body.only(["id", "name"])
        let id = try body.id("id")
        let name = try body.string("name", length: 1...200)
        return .later { [self] in
            let tenant = try await store.createTenant(id: id, name: name, actor: context.caller.actor)
            return Self.json(201) { Self.write(tenant, into: &$0) }
        }
    }

    func listTenants() async throws -> HTTPResponse {
        Self.list("tenants", try await store.tenants()) { Self.write($0, into: &$1) }
    }

    func getTenant(_ context: RequestContext) async throws -> HTTPResponse {
        let id = try tenantParameter(context)
        guard let tenant = try await store.tenant(id) else {
            throw GatewayError.notFound("Tenant '\(id)' does not exist.")
        }
        return Self.json(200) { Self.write(tenant, into: &$0) }
    }

    func deleteTenant(_ context: RequestContext) async throws -> HTTPResponse {
        let id = try tenantParameter(context)
        let result = try await store.deleteTenant(id, actor: context.caller.actor)
        guard result.deleted else { throw GatewayError.notFound("Tenant '\(id)' does not exist.") }
        keys.removeTenant(id)
        cache.invalidate(tenant: id)
        revokeLater(result.revoke)
        return Self.noContent
    }

    // MARK: API keys

    func createKey(_ context: RequestContext) throws -> Reply {
        let tenant = try tenantParameter(context)
        let body = try body(context)
        try body.only(["name"])
        let name = try body.string("name", length: 1...200)
        return .later { [self] in
            let made = KeyRegistry.generate()
            let info = try await store.createKey(
                tenant: tenant, id: made.id, name: name, hash: made.hash, actor: context.caller.actor)
            keys.insert(id: made.id, tenant: tenant, hexHash: made.hash)
            return Self.json(201) {
                $0.field("id", info.id)
                $0.field("name", info.name)
                $0.field("key", made.key)
                $0.field("created_at", info.createdAt)
            }
        }
    }

    func listKeys(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        try await requireTenant(tenant)
        return Self.list("keys", try await store.keys(tenant: tenant)) { key, writer in
            writer.field("id", key.id)
            writer.field("name", key.name)
            writer.field("created_at", key.createdAt)
            writer.field("last_used_at", key.lastUsedAt)
        }
    }

    func deleteKey(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        let id = context.parameter("key")
        guard try await store.deleteKey(tenant: tenant, id: id, actor: context.caller.actor) else {
            try await requireTenant(tenant)
            throw GatewayError.notFound("Key '\(id.prefix(64))' does not exist in tenant '\(tenant)'.")
        }
        keys.remove(id: id)
        return Self.noContent
    }

    // MARK: Clients

    static func write(_ client: Client, into writer: inout JSONWriter) {
        writer.field("id", client.id)
        writer.field("grant_type", client.grantType.rawValue)
        writer.field("login_url", client.loginURL)
        writer.field("client_id", client.clientID)
        writer.field("redirect_uri", client.redirectURI)
        writer.field("scopes", client.scopes)
        writer.field("username", client.username)
        writer.field("audience", client.grantType == .jwtBearer ? client.effectiveAudience : client.audience)
        writer.field("token_ttl_seconds", client.tokenTTLSeconds)
        writer.field("introspect", client.introspect)
        writer.field("has_client_secret", client.clientSecret != nil)
        writer.field("has_private_key", client.privateKey != nil)
        writer.field("created_at", client.createdAt)
        writer.field("updated_at", client.updatedAt)
    }

    func createClient(_ context: RequestContext) throws -> Reply {
        let tenant = try tenantParameter(context)
        let client = try ClientValidation.create(
            tenant: tenant, body: try body(context),
            allowList: configuration.upstreamAllowList)
        return .later { [self] in
            let created = try await store.createClient(client, actor: context.caller.actor)
            return Self.json(201) { Self.write(created, into: &$0) }
        }
    }

    func listClients(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        try await requireTenant(tenant)
        return Self.list("clients", try await store.clients(tenant: tenant)) { Self.write($0, into: &$1) }
    }

    func getClient(_ context: RequestContext) async throws -> HTTPResponse {
        let client = try await requireClient(try tenantParameter(context), try clientParameter(context))
        return Self.json(200) { Self.write(client, into: &$0) }
    }

    func patchClient(_ context: RequestContext) throws -> Reply {
        let tenant = try tenantParameter(context)
        let id = try clientParameter(context)
        let body = try body(context)
        return .later { [self] in
            let existing = try await requireClient(tenant, id)
            let merged = try ClientValidation.patch(existing, body: body, allowList: configuration.upstreamAllowList)
            let updated = try await store.updateClient(merged, actor: context.caller.actor)
            cache.invalidate(tenant: tenant, client: id)
            return Self.json(200) { Self.write(updated, into: &$0) }
        }
    }

    func deleteClient(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        let id = try clientParameter(context)
        let result = try await store.deleteClient(tenant: tenant, id: id, actor: context.caller.actor)
        guard result.deleted else {
            try await requireTenant(tenant)
            throw GatewayError.notFound("Client '\(id)' does not exist in tenant '\(tenant)'.")
        }
        cache.invalidate(tenant: tenant, client: id)
        revokeLater(result.revoke)
        return Self.noContent
    }

    // MARK: Connections

    func listConnections(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        let client = try await requireClient(tenant, try clientParameter(context))
        var list = try await store.connections(tenant: tenant, client: client.id)
        if client.grantType != .authorizationCode && !list.contains(where: { $0.id == "default" }) {
            // The implicit connection of a grant that needs no person: listed before its first token.
            list.insert(
                Connection(
                    id: "default", userID: nil, orgID: nil, instanceURL: nil, status: "active",
                    createdAt: client.createdAt, refreshedAt: nil), at: 0)
        }
        return Self.list("connections", list) { connection, writer in
            writer.field("id", connection.id)
            writer.field("user_id", connection.userID)
            writer.field("org_id", connection.orgID)
            writer.field("instance_url", connection.instanceURL)
            writer.field("status", connection.status)
            writer.field("created_at", connection.createdAt)
            writer.field("refreshed_at", connection.refreshedAt)
            writer.field("expires_at", connection.expiresAt)
            if let (at, error) = connection.lastError {
                writer.beginObject("last_error")
                writer.field("at", at)
                writer.field("error", error.code.rawValue)
                writer.field("message", error.message)
                if let upstream = error.upstream {
                    writer.field("upstream", upstream)
                }
                writer.endObject()
            } else {
                writer.field("last_error", nil as String?)
            }
        }
    }

    func deleteConnection(_ context: RequestContext) async throws -> HTTPResponse {
        let tenant = try tenantParameter(context)
        let client = try clientParameter(context)
        let id = context.parameter("connection")
        let result = try await store.deleteConnection(
            tenant: tenant, client: client, id: id, actor: context.caller.actor)
        guard result.deleted else {
            _ = try await requireClient(tenant, client)
            throw GatewayError.notFound("Connection '\(id.prefix(63))' of client '\(client)' does not exist.")
        }
        cache.invalidate(tenant: tenant, client: client, connection: id)
        revokeLater(result.revoke)
        return Self.noContent
    }

    // MARK: Audit

    func audit(_ context: RequestContext) throws -> Reply {
        let tenant = try tenantParameter(context)
        var limit = 100
        var before: Int?
        for (name, value) in context.request.queryItems() {
            switch name {
            case "limit":
                guard let parsed = Int(value), (1...500).contains(parsed) else {
                    throw GatewayError.invalidRequest("limit: must be a whole number from 1 to 500.")
                }
                limit = parsed
            case "before":
                guard let parsed = Int(value), parsed > 0 else {
                    throw GatewayError.invalidRequest("before: must be the 'next' value of a previous page.")
                }
                before = parsed
            default:
                throw GatewayError.invalidRequest("\(name.prefix(64)): unknown query parameter.")
            }
        }
        return .later { [self, limit, before] in
            try await requireTenant(tenant)
            let events = try await store.auditEvents(tenant: tenant, limit: limit, before: before)
            return Self.json(200) { writer in
                writer.beginArray("events")
                for event in events {
                    writer.beginObject()
                    writer.field("at", event.at)
                    writer.field("actor", event.actor)
                    writer.field("action", event.action)
                    writer.field("target", event.target)
                    if let count = event.count { writer.field("count", count) }
                    writer.endObject()
                }
                writer.endArray()
                writer.field("next", events.count == limit ? events.last.map { String($0.id) } : nil)
            }
        }
    }
}
