import Codecs
import Foundation

/// How a client obtains tokens from Salesforce.
public enum GrantType: String, Sendable, CaseIterable {
    case authorizationCode = "authorization_code"
    case jwtBearer = "jwt_bearer"
    case clientCredentials = "client_credentials"
}

/// Ids of tenants, clients and connections: `^[a-z0-9][a-z0-9_-]{0,62}$`.
public enum ResourceID {
    /// True when `id` is a valid tenant, client or connection id.
    public static func isValid(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func allowed(_ byte: UInt8, first: Bool) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || (!first && (byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")))
        }
        return allowed(bytes[0], first: true) && bytes.dropFirst().allSatisfy { allowed($0, first: false) }
    }
}

/// A tenant: the unit that owns API keys, clients and connections.
public struct Tenant: Sendable, Equatable {
    /// The tenant's id (`ResourceID`).
    public var id: String
    /// An optional display name.
    public var name: String?
    /// When the tenant was created (RFC 3339).
    public var createdAt: String

    /// Creates the value from each of its stored properties.
    public init(id: String, name: String? = nil, createdAt: String) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
    }
}

/// A tenant API key as listed by the admin API; never carries the key itself.
public struct APIKeyInfo: Sendable, Equatable {
    /// The key's id (not the secret).
    public var id: String
    /// The tenant the key belongs to.
    public var tenant: String
    /// An optional label given at creation.
    public var name: String?
    /// When the key was created (RFC 3339).
    public var createdAt: String
    /// When the key last authenticated a request (RFC 3339); nil if never.
    public var lastUsedAt: String?

    /// Creates the value from each of its stored properties.
    public init(id: String, tenant: String, name: String? = nil, createdAt: String, lastUsedAt: String? = nil) {
        self.id = id
        self.tenant = tenant
        self.name = name
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

/// A Salesforce connected app of a tenant, with its secrets in clear (only ever in memory).
public struct Client: Sendable, Equatable {
    /// The tenant that owns the client.
    public var tenant: String
    /// The client's id within its tenant (`ResourceID`).
    public var id: String
    /// How the client obtains tokens.
    public var grantType: GrantType
    /// The Salesforce login URL the token calls go to; must match the upstream allow list.
    public var loginURL: String
    /// The connected app's consumer key.
    public var clientID: String
    /// The connected app's consumer secret, in clear; nil when none was given.
    public var clientSecret: String?
    /// The PEM private key that signs the `jwtBearer` grant's JWT assertions, in clear.
    public var privateKey: String?
    /// Where Salesforce sends the `authorizationCode` grant's code.
    public var redirectURI: String?
    /// The OAuth scopes the authorize URL asks for; nil sends no `scope` (the connected app's defaults).
    public var scopes: [String]?
    /// The Salesforce user the `jwtBearer` grant's assertion names (`sub`).
    public var username: String?
    /// The configured JWT `aud`; nil means `effectiveAudience` picks one.
    public var audience: String?
    /// How long an access token is taken to live after Salesforce's `issued_at`, in seconds.
    public var tokenTTLSeconds: Int
    /// Ask Salesforce's introspection endpoint for each new access token's real expiry (needs a client secret).
    public var introspect: Bool = true
    /// When the client was created (RFC 3339); empty until stored.
    public var createdAt: String = ""
    /// When the client was last changed (RFC 3339); empty until stored.
    public var updatedAt: String = ""

    /// The JWT `aud`: the configured one, else test.salesforce.com for a sandbox login URL, else login.salesforce.com.
    public var effectiveAudience: String {
        if let audience { return audience }
        if ParsedURL(loginURL)?.host == "test.salesforce.com" { return "https://test.salesforce.com" }
        return "https://login.salesforce.com"
    }

    /// Salesforce's token endpoint of this client.
    public var tokenEndpoint: String { loginURL.trimmingSuffix("/") + "/services/oauth2/token" }
    /// Salesforce's revocation endpoint under a `login_url`; static, since the store revokes with only that column.
    public static func revokeEndpoint(loginURL: String) -> String {
        loginURL.trimmingSuffix("/") + "/services/oauth2/revoke"
    }
    /// Salesforce's authorize endpoint of this client, where a person grants access.
    public var authorizeEndpoint: String { loginURL.trimmingSuffix("/") + "/services/oauth2/authorize" }

    /// Creates the value from each of its stored properties.
    public init(
        tenant: String, id: String, grantType: GrantType, loginURL: String, clientID: String,
        clientSecret: String? = nil, privateKey: String? = nil, redirectURI: String? = nil, scopes: [String]? = nil,
        username: String? = nil, audience: String? = nil, tokenTTLSeconds: Int, introspect: Bool = true,
        createdAt: String = "", updatedAt: String = ""
    ) {
        self.tenant = tenant
        self.id = id
        self.grantType = grantType
        self.loginURL = loginURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.privateKey = privateKey
        self.redirectURI = redirectURI
        self.scopes = scopes
        self.username = username
        self.audience = audience
        self.tokenTTLSeconds = tokenTTLSeconds
        self.introspect = introspect
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One authorized Salesforce identity of a client, as listed by the admin API.
public struct Connection: Sendable {
    /// The connection's id within its client (`ResourceID`).
    public var id: String
    /// The Salesforce user id the grant belongs to, once known.
    public var userID: String?
    /// The Salesforce org id, once known.
    public var orgID: String?
    /// The org's instance URL from the last token, once known.
    public var instanceURL: String?
    /// The connection's state as the API names it (`active` or `reauthorization_required`).
    public var status: String
    /// When the connection was created (RFC 3339).
    public var createdAt: String
    /// When a token was last fetched for it (RFC 3339); nil if never.
    public var refreshedAt: String?
    /// When the current access token expires (RFC 3339); nil when there is none.
    public var expiresAt: String? = nil
    /// The last failed attempt to get a token (from a request or background work), cleared by the next success.
    public var lastError: (at: String, error: GatewayError)? = nil

    /// Creates the value from each of its stored properties.
    public init(
        id: String, userID: String? = nil, orgID: String? = nil, instanceURL: String? = nil, status: String,
        createdAt: String, refreshedAt: String? = nil, expiresAt: String? = nil,
        lastError: (at: String, error: GatewayError)? = nil
    ) {
        self.id = id
        self.userID = userID
        self.orgID = orgID
        self.instanceURL = instanceURL
        self.status = status
        self.createdAt = createdAt
        self.refreshedAt = refreshedAt
        self.expiresAt = expiresAt
        self.lastError = lastError
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}

/// The wall clock every layer reads: seconds since 1970 as a `Double`.
public enum WallClock {
    /// Now, in seconds since 1970.
    public static var now: Double { Date().timeIntervalSince1970 }
}
