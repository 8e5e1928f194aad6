import Codecs
import Foundation
import _CryptoExtras

/// Turns a create or PATCH body into a valid `Client`: fields are applied over the existing client (PATCH is a
/// JSON merge: `null` removes an optional field), then the whole result is validated for its grant type.
public enum ClientValidation {
    static let fields: Set<String> = [
        "id", "grant_type", "login_url", "client_id", "client_secret", "redirect_uri", "scopes", "username",
        "private_key",
        "audience", "token_ttl_seconds", "introspect",
    ]

    /// True when `scope` is 1 to 64 ASCII letters, digits or underscores.
    public static func validScope(_ scope: String) -> Bool {
        (1...64).contains(scope.utf8.count)
            && scope.utf8.allSatisfy { c in
                (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F
                    || c == 0x3A
                    || c == 0x2E || c == 0x2D
            }
    }

    static func printable(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }
    }

    /// Builds the client of a POST body.
    public static func create(tenant: String, body: RequestBody, allowList: UpstreamAllowList) throws(GatewayError)
        -> Client
    {
        try body.only(fields)
        let id = try body.id("id")
        guard let grantText = try body.string("grant_type", length: 1...64) else {
            throw .invalidRequest("grant_type: is required (authorization_code, jwt_bearer or client_credentials).")
        }
        guard let grant = GrantType(rawValue: grantText) else {
            throw .invalidRequest("grant_type: must be authorization_code, jwt_bearer or client_credentials.")
        }
        var client = Client(
            tenant: tenant, id: id, grantType: grant, loginURL: "", clientID: "", clientSecret: nil, privateKey: nil,
            redirectURI: nil, scopes: nil, username: nil, audience: nil, tokenTTLSeconds: 3600)
        try apply(body, to: &client)
        if client.loginURL.isEmpty && grant != .clientCredentials { client.loginURL = "https://login.salesforce.com" }
        try validate(client, allowList: allowList)
        return client
    }

    /// Applies a PATCH body to `existing` and validates the merged client.
    public static func patch(_ existing: Client, body: RequestBody, allowList: UpstreamAllowList) throws(GatewayError)
        -> Client
    {
        try body.only(fields)
        if body.has("id") {
            guard (try body.string("id", length: 1...63)) == existing.id else {
                throw .invalidRequest("id: cannot change.")
            }
        }
        var client = existing
        if body.has("grant_type") {
            guard let text = try body.string("grant_type", length: 1...64), let grant = GrantType(rawValue: text) else {
                throw .invalidRequest("grant_type: must be authorization_code, jwt_bearer or client_credentials.")
            }
            client.grantType = grant
        }
        try apply(body, to: &client)
        try validate(client, allowList: allowList)
        return client
    }

    static func apply(_ body: RequestBody, to client: inout Client) throws(GatewayError) {
        if body.has("login_url") { client.loginURL = try body.string("login_url", length: 1...2048) ?? "" }
        if body.has("client_id") { client.clientID = try body.string("client_id", length: 1...255) ?? "" }
        if body.has("client_secret") { client.clientSecret = try body.string("client_secret", length: 1...255) }
        if body.has("redirect_uri") { client.redirectURI = try body.string("redirect_uri", length: 1...2048) }
        if body.has("scopes") { client.scopes = try body.strings("scopes", maxCount: 32, valid: validScope) }
        if body.has("username") { client.username = try body.string("username", length: 1...255) }
        if body.has("private_key") { client.privateKey = try body.string("private_key", length: 1...16384) }
        if body.has("audience") { client.audience = try body.string("audience", length: 1...2048) }
        if body.has("token_ttl_seconds") {
            client.tokenTTLSeconds = try body.integer("token_ttl_seconds", 60...86400) ?? 3600
        }
        if body.has("introspect") { client.introspect = try body.bool("introspect") ?? true }
    }

    /// Checks a whole client for its grant type; the message names the field.
    public static func validate(_ client: Client, allowList: UpstreamAllowList) throws(GatewayError) {
        guard !client.loginURL.isEmpty else {
            throw .invalidRequest("login_url: is required for client_credentials: use the org's My Domain URL.")
        }
        let login = try url(client.loginURL, "login_url")
        guard login.query == nil, !client.loginURL.contains("#") else {
            throw .invalidRequest(
                "login_url: must carry no query or fragment, e.g. https://login.salesforce.com.")
        }
        guard allowList.allows(login) else {
            throw .invalidRequest(
                "login_url: \(login.scheme)://\(login.host) is not in TOKEN_GATEWAY_UPSTREAM_ALLOWLIST (Salesforce's https domains by default)."
            )
        }
        if client.grantType == .clientCredentials
            && (login.host == "login.salesforce.com" || login.host == "test.salesforce.com")
        {
            throw .invalidRequest(
                "login_url: client_credentials needs the org's My Domain URL; Salesforce refuses it on \(login.host).")
        }
        guard !client.clientID.isEmpty else { throw .invalidRequest("client_id: is required.") }
        guard printable(client.clientID) else {
            throw .invalidRequest("client_id: must be printable ASCII without spaces.")
        }
        if let secret = client.clientSecret, !printable(secret) {
            throw .invalidRequest("client_secret: must be printable ASCII without spaces.")
        }
        for (value, field) in [(client.redirectURI, "redirect_uri"), (client.audience, "audience")] {
            guard let value else { continue }
            guard case let parsed = try url(value, field), parsed.scheme == "https" || parsed.scheme == "http" else {
                throw .invalidRequest("\(field): must be an absolute http(s) URL.")
            }
        }
        if let username = client.username, username.contains(where: { $0.isNewline }) {
            throw .invalidRequest("username: must be one line.")
        }
        switch client.grantType {
        case .authorizationCode:
            guard client.clientSecret != nil else {
                throw .invalidRequest("client_secret: is required for authorization_code.")
            }
            guard client.redirectURI != nil else {
                throw .invalidRequest("redirect_uri: is required for authorization_code.")
            }
            try refuse(client.privateKey, "private_key", client.grantType)
            try refuse(client.username, "username", client.grantType)
            try refuse(client.audience, "audience", client.grantType)
        case .jwtBearer:
            guard client.username != nil else {
                throw .invalidRequest("username: is required for jwt_bearer (the JWT sub).")
            }
            guard let pem = client.privateKey else { throw .invalidRequest("private_key: is required for jwt_bearer.") }
            try checkPrivateKey(pem)
        case .clientCredentials:
            guard client.clientSecret != nil else {
                throw .invalidRequest("client_secret: is required for client_credentials.")
            }
            try refuse(client.privateKey, "private_key", client.grantType)
            try refuse(client.username, "username", client.grantType)
            try refuse(client.audience, "audience", client.grantType)
        }
    }

    /// `text` parsed as a URL; the message says what is wrong with it, never echoing it (it may hold a password).
    public static func url(_ text: String, _ field: String) throws(GatewayError) -> ParsedURL {
        do { return try ParsedURL(parsing: text) } catch {
            throw .invalidRequest("\(field): \(error.reason).")
        }
    }

    static func refuse(_ value: String?, _ field: String, _ grant: GrantType) throws(GatewayError) {
        if value != nil {
            throw .invalidRequest("\(field): does not apply to \(grant.rawValue) clients (send null to remove it).")
        }
    }

    /// Accepts an RSA private key in PEM, PKCS#1 or PKCS#8; the message never echoes the key.
    static func checkPrivateKey(_ pem: String) throws(GatewayError) {
        let trimmed = pem.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("-----BEGIN RSA PRIVATE KEY-----") || trimmed.hasPrefix("-----BEGIN PRIVATE KEY-----"),
            (try? _RSA.Signing.PrivateKey(pemRepresentation: trimmed)) != nil
        else {
            throw .invalidRequest(
                "private_key: must be an RSA private key in PEM, PKCS#1 (BEGIN RSA PRIVATE KEY) or PKCS#8 (BEGIN PRIVATE KEY), of at least 2048 bits."
            )
        }
    }
}
