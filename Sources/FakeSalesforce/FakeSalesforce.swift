import Foundation
import HTTPServer
import Logging

/// A fake Salesforce org served over real HTTP: the token, authorize, revoke and introspect endpoints, a data
/// endpoint, the identity URL and the `/__fake/` control endpoints. Stop it with `shutdown()`.
///
/// Choices where Salesforce's documented behaviour leaves room:
/// - Revoking a token that is not live (unknown, revoked or rotated out) answers 400 `unsupported_token_type`.
/// - A refused code exchange (wrong redirect URI, PKCE verifier, secret) does not spend the code; codes last 15 min.
/// - A JWT whose `iss` is unknown answers `invalid_client_id`; `exp` may be at most 180 s (+30 s skew) ahead.
/// - `latency` and `badSignature` faults let the grant take effect (a rotation happens) before the answer is held
///   back or spoiled, as when Salesforce commits and the answer is lost; the other faults change nothing.
/// - A sixth approval of one app by one user revokes the oldest refresh token family.
/// - Access tokens time out `FakeConnectedApp.sessionTimeoutSeconds` after issue (default 2 hours), whatever
///   their use; refresh tokens die after `refreshTokenUnusedExpirySeconds` without a successful refresh, when the
///   app sets that policy. Both run on the fake's clock (the system clock here).
/// - Introspection needs the app's secret (401 `invalid_client` otherwise) and sees only the app's own tokens;
///   its fields and choices are listed in `FakeSalesforceCore+Introspection.swift`.
public final class FakeSalesforce: Sendable {
    /// The org's behaviour, also reachable without HTTP.
    public let core: FakeSalesforceCore
    private let server: HTTPServer

    private init(core: FakeSalesforceCore, server: HTTPServer) {
        self.core = core
        self.server = server
    }

    /// Binds `host:port` (0 picks a free port) and starts serving an empty org.
    public static func start(host: String = "127.0.0.1", port: Int = 0, logger: Logger) throws -> FakeSalesforce {
        let core = FakeSalesforceCore(baseURL: "http://\(host):\(port)", logger: logger)
        let server = HTTPServer(
            configuration: HTTPServerConfiguration(
                host: host, port: port, refusalResponse: FakeSalesforceHandler.refusalResponse),
            handler: FakeSalesforceHandler(core: core), logger: logger)
        try server.start()
        core.baseURL = baseURL(host: host, port: server.port)
        return FakeSalesforce(core: core, server: server)
    }

    /// The URL clients reach the fake on, for a server bound to `host`; a wildcard host is reached on loopback.
    static func baseURL(host: String, port: Int) -> String {
        switch host {
        case "0.0.0.0", "": return "http://127.0.0.1:\(port)"
        case "::": return "http://[::1]:\(port)"
        default: return host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
        }
    }

    /// `http://127.0.0.1:PORT`: the login URL and the instance URL of the org.
    public var baseURL: String { core.baseURL }

    /// The bound port.
    public var port: Int { server.port }

    /// Registers (or replaces) a connected app.
    public func register(_ app: FakeConnectedApp) { core.register(app) }

    /// Adds a user to the org (its org and user ids are generated), or sets a known user's active flag.
    public func addUser(_ username: String, active: Bool = true) { core.addUser(username, active: active) }

    /// Activates or deactivates a user.
    public func setUserActive(_ username: String, _ active: Bool) { core.setUserActive(username, active) }

    /// The user the authorize endpoint signs in and approves as; nil makes it redirect with `access_denied`.
    public func setAuthorizeUser(_ username: String?) { core.setAuthorizeUser(username) }

    /// Simulates a person approving the app in a browser: returns a fresh single-use code (contains '.', ends
    /// with "==") bound to client, redirect URI, user and optional PKCE challenge (S256).
    public func issueAuthorizationCode(
        clientID: String, redirectURI: String, username: String, codeChallenge: String? = nil
    ) -> String {
        core.issueAuthorizationCode(
            clientID: clientID, redirectURI: redirectURI, username: username, codeChallenge: codeChallenge)
    }

    /// Queues faults, consumed one per token endpoint call in order.
    public func injectFaults(_ faults: [FakeFault]) { core.injectFaults(faults) }

    /// Queues faults, consumed one per introspection call in order.
    public func injectIntrospectionFaults(_ faults: [FakeIntrospectionFault]) { core.injectIntrospectionFaults(faults) }

    /// Revokes all refresh and access tokens of a user.
    public func revokeAll(username: String) { core.revokeAll(username: username) }

    /// The call counters so far.
    public var stats: FakeSalesforceStats { core.stats }

    /// Every refresh token issued to the client, live or not, oldest first (for tests that look for leaks).
    public func refreshTokens(clientID: String) -> [String] { core.refreshTokens(clientID: clientID) }

    /// True when the access token was issued here, has not been revoked and its session has not timed out.
    public func isLiveAccessToken(_ token: String) -> Bool { core.isLiveAccessToken(token) }

    /// When an access token issued here times out (what introspection's `exp` says); nil for an unknown token.
    public func accessTokenExpiry(_ token: String) -> Date? { core.accessTokenExpiry(token) }

    /// Stops serving; answers held back by a latency fault get up to two seconds to go out.
    public func shutdown() async {
        await server.shutdown(gracePeriod: .seconds(2))
    }
}

/// Serves a `FakeSalesforceCore` through `HTTPServer`; a latency fault is waited out in a deferred answer so no
/// server thread sleeps.
struct FakeSalesforceHandler: HTTPHandler {
    let core: FakeSalesforceCore

    func handle(_ request: HTTPRequest) -> HTTPHandlerResult {
        guard !request.bodyTooLarge else { return .response(Self.refusalResponse(.payloadTooLarge(limit: 65536))) }
        let answer = core.answer(
            method: request.method, path: request.path, query: request.query, headers: Array(request.headers),
            body: request.body)
        let response = HTTPResponse(status: answer.status, headers: HTTPHeaders(answer.headers), body: answer.body)
        guard let delay = answer.delay else { return .response(response) }
        return .deferred {
            try? await Task.sleep(for: delay)
            answer.completion?()
            return response
        }
    }
}

extension FakeSalesforceHandler {
    /// Salesforce-style bodies for the answers the HTTP layer gives on its own: REST's error list for a missing
    /// resource or method, OAuth's `{"error","error_description"}` otherwise (the error shape of its token endpoint).
    @Sendable static func refusalResponse(_ refusal: HTTPRefusal) -> HTTPResponse {
        func rest(_ code: String) -> HTTPResponse {
            .json(status: refusal.status, Encoding.json([["errorCode": code, "message": refusal.reason]]))
        }
        func oauth(_ error: String, _ description: String) -> HTTPResponse {
            .json(status: refusal.status, Encoding.json(["error": error, "error_description": description]))
        }
        switch refusal {
        case .notFound: return rest("NOT_FOUND")
        case .methodNotAllowed: return rest("METHOD_NOT_ALLOWED")
        case .payloadTooLarge: return oauth("invalid_request", "body too large")
        case .badFraming: return oauth("invalid_request", refusal.reason)
        case .shuttingDown, .internalError: return oauth("server_error", refusal.reason)
        }
    }
}
