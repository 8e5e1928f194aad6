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

public struct Tenant: Sendable, Equatable {
    public var id: String
    public var name: String?
    public var createdAt: String

    /// Creates the value from each of its stored properties.
    public init(id: String, name: String? = nil, createdAt: String) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
    }
}

public struct APIKeyInfo: Sendable, Equatable {
    public var id: String
    public var tenant: String
    public var name: String?
    public var createdAt: String
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
    public var tenant: String
    public var id: String
    public var grantType: GrantType
    public var loginURL: String
    public var clientID: String
    public var clientSecret: String?
    public var privateKey: String?
    public var redirectURI: String?
    public var scopes: [String]?
    public var username: String?
    public var audience: String?
    public var tokenTTLSeconds: Int
    /// Ask Salesforce's introspection endpoint for each new access token's real expiry (needs a client secret).
    public var introspect: Bool = true
    public var createdAt: String = ""
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
    public var id: String
    public var userID: String?
    public var orgID: String?
    public var instanceURL: String?
    public var status: String
    public var createdAt: String
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
