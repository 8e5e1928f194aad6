import Codecs
import HTTPServer
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// `POST /token` and `POST /exchange`: the routes internal services call with a tenant key.
extension GatewayAPI {
    static let tokenFields: Set<String> = ["client", "connection", "min_ttl_seconds", "force_refresh"]
    static let exchangeFields: Set<String> = ["client", "code", "connection", "redirect_uri", "code_verifier"]

    static func tokenResponse(_ issued: IssuedToken, key: ConnectionKey) -> HTTPResponse {
        json(200) { writer in
            writer.field("access_token", issued.token.accessToken)
            writer.field("token_type", issued.token.tokenType)
            writer.field("instance_url", issued.token.instanceURL)
            writer.field("id", issued.token.identityURL)
            writer.field("scope", issued.token.scope)
            writer.field("issued_at", Timestamp.rfc3339(issued.token.issuedAt))
            writer.field("expires_at", Timestamp.rfc3339(issued.token.expiresAt))
            writer.field("client", key.client)
            writer.field("connection", key.connection)
            writer.field("source", issued.source.rawValue)
            if !issued.warnings.isEmpty { writer.field("warnings", issued.warnings) }
        }
    }

    /// The body of a token route, with the calling key and the connection it names (always in the key's tenant).
    func tokenRequest(_ context: RequestContext, fields: Set<String>) throws -> (
        body: RequestBody, keyID: String, key: ConnectionKey
    ) {
        let body = try body(context)
        try body.only(fields)
        guard case .key(let keyID, let tenant) = context.caller else { throw GatewayError.tenantKeyOnly }
        let key = ConnectionKey(
            tenant: tenant, client: try body.id("client"), connection: try body.id("connection", default: "default"))
        return (body, keyID, key)
    }

    func token(_ context: RequestContext) throws -> Reply {
        // The usual hit, `{"client":"crm"}` with an optional connection, read without a RequestBody; anything
        // else (other fields, escapes, an invalid id) takes the generic path and its errors.
        let request = context.request
        if case .key(let keyID, let tenant) = context.caller,
            let ids = RequestBody.tokenIDs(
                request.body, contentType: request.headers["Content-Type"], tooLarge: request.bodyTooLarge)
        {
            let key = ConnectionKey(tenant: tenant, client: ids.client, connection: ids.connection ?? "default")
            return issue(key, keyID: keyID, minTTL: 60, force: false)
        }
        let (body, keyID, key) = try tokenRequest(context, fields: Self.tokenFields)
        let minTTL = Double(try body.integer("min_ttl_seconds", 0...86400) ?? 60)
        let force = try body.bool("force_refresh") ?? false
        return issue(key, keyID: keyID, minTTL: minTTL, force: force)
    }

    func issue(_ key: ConnectionKey, keyID: String, minTTL: Double, force: Bool) -> Reply {
        // Rendered once per cached token (its timestamps too), not once per hit.
        if let body = tokens.cachedHit(key, minTTL: minTTL, force: force, render: {
            Self.tokenResponse(IssuedToken(token: $0, source: .cache), key: key).body
        }) {
            metrics.cacheHit()
            keys.tokenIssued(id: keyID, tenant: key.tenant)
            return .now(HTTPResponse.json(status: 200, body))
        }
        metrics.cacheMiss()
        return .later { [self] in
            let issued = try await tokens.fetchToken(key, minTTL: minTTL, force: force, keyID: keyID)
            keys.tokenIssued(id: keyID, tenant: key.tenant)
            return Self.tokenResponse(issued, key: key)
        }
    }

    func exchange(_ context: RequestContext) throws -> Reply {
        let (body, keyID, key) = try tokenRequest(context, fields: Self.exchangeFields)
        let pasted = try body.requiredString("code", length: 1...4096)
        let redirectURI = try body.string("redirect_uri", length: 1...2048)
        let verifier = try body.string("code_verifier", length: 43...128)
        if let verifier,
            !verifier.utf8.allSatisfy({ c in
                (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x2E
                    || c == 0x5F
                    || c == 0x7E || c == 0x2D
            })
        {
            throw GatewayError.invalidRequest("code_verifier: must be 43 to 128 of [A-Za-z0-9._~-] (RFC 7636).")
        }
        let code: String
        switch AuthorizationCode.extract(pasted) {
        case .code(let value): code = value
        case .missing: throw GatewayError.invalidRequest("code: no authorization code found in it.")
        case .error(let error, let description):
            throw GatewayError.invalidRequest(
                "code: the redirect carries Salesforce's error '\(error.prefix(64))'\(description.map { " (\($0.prefix(200)))" } ?? ""); authorize again."
            )
        }
        return .later { [self] in
            let issued = try await tokens.exchange(
                key, code: code, redirectURI: redirectURI, codeVerifier: verifier, actor: context.caller.actor)
            keys.tokenIssued(id: keyID, tenant: key.tenant)
            return Self.tokenResponse(issued, key: key)
        }
    }
}
