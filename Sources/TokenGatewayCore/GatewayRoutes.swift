/// Every route the gateway serves: the single list the router is built from and `openapi.yaml` is checked against.
public enum GatewayRoutes {
    /// A served route: HTTP method and path pattern with `{parameters}`.
    public struct Route: Sendable, Hashable {
        public let method: String
        public let pattern: String
    }

    /// The routes, in the order the router registers them.
    public static let table: [Route] = [
        Route(method: "GET", pattern: "/healthz"),
        Route(method: "GET", pattern: "/readyz"),
        Route(method: "GET", pattern: "/metrics"),
        Route(method: "GET", pattern: "/callback"),
        Route(method: "POST", pattern: "/token"),
        Route(method: "POST", pattern: "/exchange"),
        Route(method: "POST", pattern: "/tenants"),
        Route(method: "GET", pattern: "/tenants"),
        Route(method: "GET", pattern: "/tenants/{tenant}"),
        Route(method: "DELETE", pattern: "/tenants/{tenant}"),
        Route(method: "POST", pattern: "/tenants/{tenant}/keys"),
        Route(method: "GET", pattern: "/tenants/{tenant}/keys"),
        Route(method: "DELETE", pattern: "/tenants/{tenant}/keys/{key}"),
        Route(method: "POST", pattern: "/tenants/{tenant}/clients"),
        Route(method: "GET", pattern: "/tenants/{tenant}/clients"),
        Route(method: "GET", pattern: "/tenants/{tenant}/clients/{client}"),
        Route(method: "PATCH", pattern: "/tenants/{tenant}/clients/{client}"),
        Route(method: "DELETE", pattern: "/tenants/{tenant}/clients/{client}"),
        Route(method: "GET", pattern: "/tenants/{tenant}/clients/{client}/connections"),
        Route(method: "DELETE", pattern: "/tenants/{tenant}/clients/{client}/connections/{connection}"),
        Route(method: "POST", pattern: "/tenants/{tenant}/clients/{client}/authorize"),
        Route(method: "GET", pattern: "/tenants/{tenant}/audit"),
    ]
}
