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
}

public struct APIKeyInfo: Sendable, Equatable {
    public var id: String
    public var tenant: String
    public var name: String?
    public var createdAt: String
    public var lastUsedAt: String?
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
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
