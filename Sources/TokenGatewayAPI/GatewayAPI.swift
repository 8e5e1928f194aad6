import Codecs
import Foundation
import HTTPServer
import Logging
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// What a route handler gives back: an answer now (the fast path, on the HTTP thread) or work that needs I/O.
public enum Reply: Sendable {
    case now(HTTPResponse)
    case later(@Sendable () async throws -> HTTPResponse)
}

/// A matched request with its checked caller.
public struct RequestContext: Sendable {
    /// The request as the server parsed it.
    public var request: HTTPRequest
    /// The values of the route's `{parameters}`, by name.
    public var parameters: PathParameters
    /// Who sent the request: the admin or a tenant's API key; `.admin` on routes open to anyone (`Access.anyone`).
    public var caller: Caller
    /// The API's logger, which `logger` adds the request id to.
    var baseLogger: Logger

    /// The logger for this request, with its request id in the metadata (built when a handler asks for it).
    public var logger: Logger { baseLogger.forRequest(request.requestID) }

    /// The path parameter `name`; empty when the route has none of that name.
    public func parameter(_ name: String) -> String { parameters[name] ?? "" }
}

/// Who may call a route.
public enum Access: Sendable { case anyone, admin, tenantKey }

/// The HTTP face of the gateway: builds the router from `GatewayRoutes.table`, checks credentials, turns errors into
/// the contract's JSON bodies, and records metrics and one log line per request with its request id.
public final class GatewayAPI: Sendable {
    /// What the routes need of the gateway's settings.
    public let configuration: Settings
    /// Tenants, keys, clients, connections and audit events in PostgreSQL.
    public let store: GatewayStore
    /// The API keys held in memory, checked on every request.
    public let keys: KeyRegistry
    /// The in-memory token cache.
    public let cache: TokenCache
    /// Hands out tokens: cache, database, then Salesforce.
    public let tokens: TokenService
    /// Calls Salesforce's token, introspection and revocation endpoints.
    public let salesforce: SalesforceTokenEndpoint
    /// The counters served at `GET /metrics`.
    public let metrics: Metrics
    /// The logger the API derives each request's logger from.
    public let logger: Logger
    let readiness: @Sendable () async -> (ready: Bool, reason: String?)
    /// Failed credentials per address, unknown-key lookups and refusal log lines, each bounded.
    let authentication = AuthenticationGuard()

    /// Wires the API to the gateway's parts; `readiness` answers `GET /readyz`.
    public init(
        configuration: Settings, store: GatewayStore, keys: KeyRegistry, cache: TokenCache,
        tokens: TokenService,
        salesforce: SalesforceTokenEndpoint, metrics: Metrics, logger: Logger,
        readiness: @escaping @Sendable () async -> (ready: Bool, reason: String?)
    ) {
        self.configuration = configuration
        self.store = store
        self.keys = keys
        self.cache = cache
        self.tokens = tokens
        self.salesforce = salesforce
        self.metrics = metrics
        self.logger = logger
        self.readiness = readiness
    }

    /// What the HTTP API needs of the gateway's settings (the executable reads them from the environment).
    public struct Settings: Sendable {
        /// The largest request body accepted, in bytes.
        public var maxBodyBytes: Int
        /// The gateway's public base URL (for `/callback`), if authorize links are enabled.
        public var publicURL: String?
        /// Where clients' `login_url` may point.
        public var upstreamAllowList: UpstreamAllowList
        /// Where webhook URLs may point (nil: public HTTPS hosts only).
        public var webhookAllowList: UpstreamAllowList?

        /// Settings with the contract's defaults for what is not given.
        public init(
            maxBodyBytes: Int = 65536, publicURL: String? = nil,
            upstreamAllowList: UpstreamAllowList = .salesforceDefault, webhookAllowList: UpstreamAllowList? = nil
        ) {
            self.maxBodyBytes = maxBodyBytes
            self.publicURL = publicURL
            self.upstreamAllowList = upstreamAllowList
            self.webhookAllowList = webhookAllowList
        }
    }

    typealias Handler = @Sendable (GatewayAPI, RequestContext) throws -> Reply

    /// The router serving every route of `GatewayRoutes.table`, each behind its credential check.
    public func makeRouter() -> Router {
        var router = Router(refusals: GatewayError.refusalResponse)
        for route in GatewayRoutes.table {
            let handler = route.handler
            let served = ServedRoute(
                pattern: route.pattern, access: route.access,
                noStore: route.method == "POST" && RequestChain.noStorePOSTRoutes.contains(route.pattern),
                metrics: metrics.route(route.pattern))
            router.add(route.method, route.pattern) { [self] request, parameters in
                self.serve(request, parameters, route: served, handler)
            }
        }
        return router
    }

    // MARK: The request pipeline

    /// What the credential of a request leads to.
    enum Admission {
        case caller(Caller)
        /// Shaped like a key this replica does not hold: one database lookup decides.
        case lookup(id: String)
        /// Refused before any handler runs; `reason` names the sampled log line.
        case refused(HTTPResponse, reason: String)
    }

    func serve(
        _ request: HTTPRequest, _ parameters: PathParameters, route: ServedRoute, _ handler: @escaping Handler
    )
        -> HTTPHandlerResult
    {
        // No closure, logger or metadata is made for an answer given now; the log line builds its own.
        let access = route.access
        var trace = RequestTrace(request: request, route: route, started: ContinuousClock.now, refusal: nil)
        let caller: Caller
        // Public routes take no credential; their caller is a placeholder that no handler reads.
        switch access == .anyone ? Admission.caller(.admin) : admission(request, access: access) {
        case .caller(let admitted):
            caller = admitted
        case .refused(let response, let reason):
            trace.refusal = reason
            return .response(RequestChain.finish(self, trace, response))
        case .lookup(let id):
            // A key made on another replica a moment ago: look it up once, then serve from memory.
            return .deferred { [self, trace] in
                await RequestScope.$requestID.withValue(request.requestID) {
                    await self.admitThenServe(parameters, id: id, access: access, trace: trace, handler)
                }
            }
        }
        switch run(request, parameters, caller: caller, access: access, handler) {
        case .now(let response): return .response(RequestChain.finish(self, trace, response))
        case .later(let work):
            return .deferred { [self, trace] in
                await RequestScope.$requestID.withValue(request.requestID) {
                    await Self.resolve(.later(work)) { RequestChain.finish(self, trace, $0) }
                }
            }
        }
    }

    /// Checks the credential of a request to a non-public route. A valid key on a tenant-key route always passes;
    /// anything else first waits out its address's failed credentials, so guessing the admin token stays slow.
    func admission(_ request: HTTPRequest, access: Access) -> Admission {
        let authorization = request.headers["Authorization"]
        let check = keys.check(authorization: authorization)
        if access == .tenantKey, case .key(let id, let tenant) = check { return .caller(.key(id: id, tenant: tenant)) }
        let address = request.remoteAddress
        if let wait = authentication.retryAfter(address: address) {
            return .refused(GatewayError.tooManyFailedCredentials(retryAfter: wait).response, reason: "rate_limited")
        }
        switch check {
        case .admin:
            return .caller(.admin)
        case .key(let id, let tenant):
            return .caller(.key(id: id, tenant: tenant))
        case .unknownKey(let id):
            guard authentication.admitLookup() else {
                authentication.recordFailure(address: address)
                return .refused(GatewayError.keyLookupsBusy.response, reason: "lookup_limited")
            }
            return .lookup(id: id)
        case .invalid:
            if authorization != nil { authentication.recordFailure(address: address) }
            return .refused(GatewayError.unauthorized.response, reason: "unauthorized")
        }
    }

    /// Serves a request whose key this replica has not seen yet: one database lookup, then the usual path.
    func admitThenServe(
        _ parameters: PathParameters, id: String, access: Access, trace: RequestTrace, _ handler: @escaping Handler
    ) async -> HTTPResponse {
        let request = trace.request
        let admitted: Caller?
        do {
            let rows = try await store.keyHashes(id: id)
            admitted = rows.first.flatMap { row in
                keys.admit(
                    authorization: request.headers["Authorization"], id: id, tenant: row.tenant, hexHash: row.hash)
                    ? Caller.key(id: id, tenant: row.tenant) : nil
            }
        } catch {
            authentication.recordFailure(address: request.remoteAddress)
            return RequestChain.finish(self, trace, GatewayError.unavailable.response)
        }
        guard let admitted else {
            keys.rememberUnknown(id: id)
            authentication.recordFailure(address: request.remoteAddress)
            var refused = trace
            refused.refusal = "unauthorized"
            return RequestChain.finish(self, refused, GatewayError.unauthorized.response)
        }
        return await Self.resolve(run(request, parameters, caller: admitted, access: access, handler)) {
            RequestChain.finish(self, trace, $0)
        }
    }

    func run(
        _ request: HTTPRequest, _ parameters: PathParameters, caller: Caller, access: Access, _ handler: Handler
    ) -> Reply {
        switch (access, caller) {
        case (.admin, .key): return .now(GatewayError.adminOnly.response)
        case (.tenantKey, .admin): return .now(GatewayError.tenantKeyOnly.response)
        default: break
        }
        if case .key(let id, _) = caller { keys.markUsed(id: id, now: TokenService.now) }
        let context = RequestContext(request: request, parameters: parameters, caller: caller, baseLogger: logger)
        do {
            return try handler(self, context)
        } catch {
            return .now(Self.errorResponse(error, logger: context.logger))
        }
    }

    static func resolve(_ reply: Reply, _ finish: @Sendable (HTTPResponse) -> HTTPResponse) async -> HTTPResponse {
        switch reply {
        case .now(let response): return finish(response)
        case .later(let work):
            do { return finish(try await work()) } catch { return finish(errorResponse(error, logger: nil)) }
        }
    }

    // MARK: Helpers

    static func json(_ status: Int, headers: HTTPHeaders = HTTPHeaders(), _ build: (inout JSONWriter) -> Void)
        -> HTTPResponse
    {
        var writer = JSONWriter()
        writer.beginObject()
        build(&writer)
        writer.endObject()
        return HTTPResponse.json(status: status, writer.bytes, headers: headers)
    }

    static let noContent = HTTPResponse(status: 204)

    func body(_ context: RequestContext) throws(GatewayError) -> RequestBody {
        try RequestBody.parse(context.request, maxBytes: configuration.maxBodyBytes)
    }

    /// Runs a revocation at Salesforce after the answer, without holding the request.
    func revokeLater(_ targets: [RevocationTarget]) {
        guard !targets.isEmpty else { return }
        let salesforce = self.salesforce
        Task { for target in targets { await salesforce.revoke(target) } }
    }

    func ready() async -> HTTPResponse {
        let state = await readiness()
        if state.ready { return Self.json(200) { $0.field("status", "ready") } }
        return Self.json(503) {
            $0.field("status", "unavailable")
            $0.field("reason", state.reason)
        }
    }

    func metricsResponse() -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        return HTTPResponse(status: 200, headers: headers, body: Array(metrics.render().utf8))
    }
}
