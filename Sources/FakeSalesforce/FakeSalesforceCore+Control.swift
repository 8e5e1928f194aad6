import Foundation
import _CryptoExtras

/// The fake's own JSON control endpoints under `/__fake/`, for the demo, the benchmarks and out-of-process tests.
extension FakeSalesforceCore {
    func controlEndpoint(_ request: FakeRequest) -> FakeAnswer {
        switch (request.method, request.path) {
        case ("GET", "/__fake/stats"):
            return .json(200, Self.statsJSON(stats))
        case ("POST", let path):
            guard let object = Encoding.jsonObject(request.body) else {
                return Self.controlError(400, "the body must be a JSON object")
            }
            do {
                return try controlPost(path, object)
            } catch {
                return Self.controlError(400, error.message)
            }
        default:
            return Self.controlError(404, "no control endpoint \(request.method) \(request.path)")
        }
    }

    private func controlPost(_ path: String, _ object: [String: Any]) throws(ControlError) -> FakeAnswer {
        switch path {
        case "/__fake/apps":
            let app = try Self.connectedApp(from: object)
            register(app)
            return .json(201, ["client_id": app.clientID])
        case "/__fake/users":
            let username = try Self.string(object, "username")
            let active = try Self.optional(object, "active", Encoding.bool) ?? true
            addUser(username, active: active)
            return .json(
                200,
                ["username": username, "user_id": userID(of: username) ?? "", "org_id": orgID, "active": active])
        case "/__fake/codes":
            let code = issueAuthorizationCode(
                clientID: try Self.string(object, "client_id"),
                redirectURI: try Self.string(object, "redirect_uri"),
                username: try Self.string(object, "username"),
                codeChallenge: try Self.optional(object, "code_challenge") { $0 as? String })
            return .json(201, ["code": code])
        case "/__fake/faults":
            guard let list = object["faults"] as? [Any] else { throw ControlError("faults must be an array") }
            let endpoint = try Self.optional(object, "endpoint") { $0 as? String } ?? "token"
            switch endpoint {
            case "token":
                injectFaults(try list.map { (item: Any) throws(ControlError) in try Self.fault(from: item) })
            case "introspect":
                injectIntrospectionFaults(
                    try list.map { (item: Any) throws(ControlError) in try Self.introspectionFault(from: item) })
            default:
                throw ControlError("endpoint must be token or introspect")
            }
            return .json(200, ["queued": list.count])
        case "/__fake/authorize-user":
            let username = try Self.optional(object, "username") { $0 as? String }
            setAuthorizeUser(username)
            return .json(200, ["username": username.map { $0 as Any } ?? NSNull()])
        case "/__fake/revoke-all":
            revokeAll(username: try Self.string(object, "username"))
            return .json(200, [:] as [String: Any])
        default:
            throw ControlError("no control endpoint POST \(path)")
        }
    }

    struct ControlError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    static func controlError(_ status: Int, _ message: String) -> FakeAnswer {
        .json(status, ["error": "invalid_request", "message": message])
    }

    static func statsJSON(_ stats: FakeSalesforceStats) -> [String: Any] {
        [
            "token_calls": stats.tokenCalls,
            "token_calls_by_grant": stats.tokenCallsByGrant,
            "revoke_calls": stats.revokeCalls,
            "data_calls": stats.dataCalls,
            "authorize_calls": stats.authorizeCalls,
            "refresh_families_revoked": stats.refreshFamiliesRevoked,
            "overlapping_refreshes": stats.overlappingRefreshes,
            "max_concurrent_refreshes_per_family": stats.maxConcurrentRefreshesPerFamily,
            "refresh_tokens_expired_unused": stats.refreshTokensExpiredUnused,
            "introspection_calls": stats.introspectionCalls,
            "introspection_calls_by_client": stats.introspectionCallsByClient,
        ]
    }

    private static func string(_ object: [String: Any], _ key: String) throws(ControlError) -> String {
        guard let value = object[key] as? String else { throw ControlError("\(key) must be a string") }
        return value
    }

    /// A value that may be missing or null, else must convert.
    private static func optional<T>(_ object: [String: Any], _ key: String, _ convert: (Any) -> T?)
        throws(ControlError) -> T?
    {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let converted = convert(value) else { throw ControlError("\(key) has the wrong type") }
        return converted
    }

    private static func strings(_ object: [String: Any], _ key: String) throws(ControlError) -> [String]? {
        try optional(object, key) { value in
            guard let list = value as? [Any] else { return nil }
            let strings = list.compactMap { $0 as? String }
            return strings.count == list.count ? strings : nil
        }
    }

    /// A whole number of seconds, at least 1, or nil when missing or null.
    private static func seconds(_ object: [String: Any], _ key: String) throws(ControlError) -> Int? {
        let value = try optional(object, key, Encoding.integer)
        if let value, value < 1 { throw ControlError("\(key) must be at least 1") }
        return value
    }

    /// Reads an app in the snake_case shape of `FakeConnectedApp` (`session_timeout_seconds` and
    /// `refresh_token_unused_expiry_seconds` are whole seconds, at least 1, or null for the default); a JWT key
    /// must be a readable RSA public key.
    static func connectedApp(from object: [String: Any]) throws(ControlError) -> FakeConnectedApp {
        var app = FakeConnectedApp(
            clientID: try string(object, "client_id"),
            clientSecret: try optional(object, "client_secret") { $0 as? String } ?? "")
        app.redirectURIs = try strings(object, "redirect_uris") ?? []
        app.rotateRefreshTokens = try optional(object, "rotate_refresh_tokens", Encoding.bool) ?? false
        app.jwtPublicKeyPEM = try optional(object, "jwt_public_key_pem") { $0 as? String }
        app.preApprovedUsers = Set(try strings(object, "pre_approved_users") ?? [])
        app.clientCredentialsUser = try optional(object, "client_credentials_user") { $0 as? String }
        app.scopes = try optional(object, "scopes") { $0 as? String } ?? app.scopes
        app.tokenLatencyMilliseconds =
            try optional(object, "token_latency_ms") { Encoding.integer($0).flatMap { $0 >= 0 ? $0 : nil } } ?? 0
        app.sessionTimeoutSeconds = try seconds(object, "session_timeout_seconds") ?? app.sessionTimeoutSeconds
        app.refreshTokenUnusedExpirySeconds = try seconds(object, "refresh_token_unused_expiry_seconds")
        if let pem = app.jwtPublicKeyPEM, (try? _RSA.Signing.PublicKey(pemRepresentation: pem)) == nil {
            throw ControlError("jwt_public_key_pem is not a readable RSA public key (2048 bits or more)")
        }
        return app
    }

    /// Reads `{"type": "latency", "milliseconds": 200}` and friends (snake_case or camelCase type names).
    static func fault(from item: Any) throws(ControlError) -> FakeFault {
        guard let object = item as? [String: Any], let type = object["type"] as? String else {
            throw ControlError("each fault must be an object with a type")
        }
        switch type {
        case "latency":
            guard let milliseconds = Encoding.integer(object["milliseconds"]), milliseconds >= 0 else {
                throw ControlError("latency needs milliseconds")
            }
            return .latency(milliseconds: milliseconds)
        case "server_error", "serverError":
            return .serverError
        case "garbage":
            return .garbage
        case "bad_signature", "badSignature":
            return .badSignature
        case "throttle":
            let snake = try optional(object, "retry_after_seconds", Encoding.integer)
            let camel = try optional(object, "retryAfterSeconds", Encoding.integer)
            return .throttle(retryAfterSeconds: snake ?? camel)
        case "rate_limit_body", "rateLimitBody":
            return .rateLimitBody
        default:
            throw ControlError("unknown fault type \(type)")
        }
    }

    /// Reads a fault of the introspection endpoint: `latency`, `server_error`, `garbage` or `throttle`, shaped as
    /// for the token endpoint.
    static func introspectionFault(from item: Any) throws(ControlError) -> FakeIntrospectionFault {
        switch try fault(from: item) {
        case .latency(let milliseconds): return .latency(milliseconds: milliseconds)
        case .serverError: return .serverError
        case .garbage: return .garbage
        case .throttle(let retryAfter): return .throttle(retryAfterSeconds: retryAfter)
        case .badSignature, .rateLimitBody: throw ControlError("that fault type does not apply to introspection")
        }
    }
}

/// Preloaded org content, as read by `fake-salesforce --config FILE.json`:
/// `{"apps": [<app as for POST /__fake/apps>], "users": [{"username", "active"}], "authorize_user": "..."}`.
public struct FakeSalesforceConfiguration: Sendable {
    /// Apps to register.
    public var apps: [FakeConnectedApp]
    /// Users to add, with their active flags.
    public var users: [(username: String, active: Bool)]
    /// The user the authorize endpoint approves as.
    public var authorizeUser: String?

    /// Parses the JSON file's bytes; the error says what is wrong.
    public init(json bytes: [UInt8]) throws {
        guard let object = Encoding.jsonObject(bytes) else {
            throw FakeSalesforceConfigurationError(message: "the configuration must be a JSON object")
        }
        do {
            apps = try (object["apps"] as? [Any] ?? []).map { (item: Any) throws(FakeSalesforceCore.ControlError) in
                guard let app = item as? [String: Any] else { throw .init("each app must be an object") }
                return try FakeSalesforceCore.connectedApp(from: app)
            }
            users = try (object["users"] as? [Any] ?? []).map {
                (item: Any) throws(FakeSalesforceCore.ControlError) in
                guard let user = item as? [String: Any], let name = user["username"] as? String else {
                    throw .init("each user needs a username")
                }
                return (name, Encoding.bool(user["active"]) ?? true)
            }
        } catch {
            throw FakeSalesforceConfigurationError(message: error.message)
        }
        authorizeUser = object["authorize_user"] as? String
    }

    /// Loads the configuration into an org.
    public func apply(to core: FakeSalesforceCore) {
        for user in users { core.addUser(user.username, active: user.active) }
        for app in apps { core.register(app) }
        if let authorizeUser { core.setAuthorizeUser(authorizeUser) }
    }
}

/// A configuration file that cannot be read.
public struct FakeSalesforceConfigurationError: Error, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// The message.
    public var description: String { message }
}
