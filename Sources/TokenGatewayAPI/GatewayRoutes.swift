import Codecs
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// Every route the gateway serves, each with who may call it and the code that answers it: the one list
/// `GatewayAPI.makeRouter()` builds the router from. A route cannot be listed without its handler; `openapi.yaml` is
/// checked against the routes of the router built from this list.
public enum GatewayRoutes {
    /// A served route: HTTP method, path pattern with `{parameters}`, the credential it takes, and its handler.
    public struct Route: Sendable {
        /// The HTTP method, uppercase.
        public let method: String
        /// The path pattern, with `{name}` for each parameter.
        public let pattern: String
        /// The credential the route takes.
        public let access: Access
        let handler: @Sendable (GatewayAPI, RequestContext) throws -> Reply

        init(
            _ method: String, _ pattern: String, _ access: Access,
            _ handler: @escaping @Sendable (GatewayAPI, RequestContext) throws -> Reply
        ) {
            self.method = method
            self.pattern = pattern
            self.access = access
            self.handler = handler
        }
    }

    /// The routes, in the order the router registers them.
    public static let table: [Route] = [
        Route("GET", "/healthz", .anyone) { _, _ in .now(GatewayAPI.json(200) { $0.field("status", "ok") }) },
        Route("GET", "/readyz", .anyone) { api, _ in .later { await api.ready() } },
        Route("GET", "/metrics", .anyone) { api, _ in .now(api.metricsResponse()) },
        Route("GET", "/callback", .anyone) { api, context in .later { await api.callback(context) } },
        Route("POST", "/token", .tenantKey) { api, context in try api.token(context) },
        Route("POST", "/exchange", .tenantKey) { api, context in try api.exchange(context) },
        Route("POST", "/tenants", .admin) { api, context in try api.createTenant(context) },
        Route("GET", "/tenants", .admin) { api, _ in .later { try await api.listTenants() } },
        Route("GET", "/tenants/{tenant}", .admin) { api, context in .later { try await api.getTenant(context) } },
        Route("DELETE", "/tenants/{tenant}", .admin) { api, context in
            .later { try await api.deleteTenant(context) }
        },
        Route("POST", "/tenants/{tenant}/keys", .admin) { api, context in try api.createKey(context) },
        Route("GET", "/tenants/{tenant}/keys", .admin) { api, context in .later { try await api.listKeys(context) } },
        Route("DELETE", "/tenants/{tenant}/keys/{key}", .admin) { api, context in
            .later { try await api.deleteKey(context) }
        },
        Route("POST", "/tenants/{tenant}/clients", .admin) { api, context in try api.createClient(context) },
        Route("GET", "/tenants/{tenant}/clients", .admin) { api, context in
            .later { try await api.listClients(context) }
        },
        Route("GET", "/tenants/{tenant}/clients/{client}", .admin) { api, context in
            .later { try await api.getClient(context) }
        },
        Route("PATCH", "/tenants/{tenant}/clients/{client}", .admin) { api, context in try api.patchClient(context) },
        Route("DELETE", "/tenants/{tenant}/clients/{client}", .admin) { api, context in
            .later { try await api.deleteClient(context) }
        },
        Route("GET", "/tenants/{tenant}/clients/{client}/connections", .admin) { api, context in
            .later { try await api.listConnections(context) }
        },
        Route("DELETE", "/tenants/{tenant}/clients/{client}/connections/{connection}", .admin) { api, context in
            .later { try await api.deleteConnection(context) }
        },
        Route("POST", "/tenants/{tenant}/clients/{client}/authorize", .admin) { api, context in
            try api.authorize(context)
        },
        Route("GET", "/tenants/{tenant}/audit", .admin) { api, context in try api.audit(context) },
        Route("POST", "/tenants/{tenant}/webhooks", .admin) { api, context in try api.createWebhook(context) },
        Route("GET", "/tenants/{tenant}/webhooks", .admin) { api, context in
            .later { try await api.listWebhooks(context) }
        },
        Route("DELETE", "/tenants/{tenant}/webhooks/{webhook}", .admin) { api, context in
            .later { try await api.deleteWebhook(context) }
        },
    ]
}
