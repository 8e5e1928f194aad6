/// A connected app registered in the fake org: its consumer key and secret and the policies Salesforce applies.
public struct FakeConnectedApp: Sendable {
    /// The consumer key (`client_id`).
    public var clientID: String
    /// The consumer secret; an empty secret means the app is not asked for one.
    public var clientSecret: String
    /// The callback URLs the app accepts; `redirect_uri` must equal one of them exactly.
    public var redirectURIs: [String]
    /// When true every refresh returns a new refresh token and the presented one dies.
    public var rotateRefreshTokens: Bool
    /// RSA public key (PEM, SPKI `BEGIN PUBLIC KEY`) that verifies JWT bearer assertions; nil refuses the grant.
    public var jwtPublicKeyPEM: String?
    /// Usernames pre-approved (by profile or permission set) for the JWT bearer grant.
    public var preApprovedUsers: Set<String>
    /// The run-as user of the client credentials grant; nil refuses the grant.
    public var clientCredentialsUser: String?
    /// Granted scopes, space separated; refresh tokens are issued only with `refresh_token` or `offline_access`.
    public var scopes: String
    /// Every token call of this app is answered this late (the grant takes effect first), as a slow or hanging
    /// org would; 0 answers at once.
    public var tokenLatencyMilliseconds: Int = 0

    /// Creates an app; every policy defaults to Salesforce's defaults for a new connected app.
    public init(
        clientID: String,
        clientSecret: String,
        redirectURIs: [String] = [],
        rotateRefreshTokens: Bool = false,
        jwtPublicKeyPEM: String? = nil,
        preApprovedUsers: Set<String> = [],
        clientCredentialsUser: String? = nil,
        scopes: String = "api web refresh_token"
    ) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURIs = redirectURIs
        self.rotateRefreshTokens = rotateRefreshTokens
        self.jwtPublicKeyPEM = jwtPublicKeyPEM
        self.preApprovedUsers = preApprovedUsers
        self.clientCredentialsUser = clientCredentialsUser
        self.scopes = scopes
    }

    /// True when the granted scopes allow a refresh token.
    var issuesRefreshTokens: Bool {
        let words = scopes.split(separator: " ")
        return words.contains("refresh_token") || words.contains("offline_access")
    }
}

/// A misbehaviour of the token endpoint, consumed one per token call in the order injected.
public enum FakeFault: Sendable, Equatable {
    /// The call is handled normally but the answer is held back this long (the grant has already taken effect).
    case latency(milliseconds: Int)
    /// HTTP 500 with an HTML error page; nothing changes.
    case serverError
    /// HTTP 200 whose body is not JSON (a truncated object); nothing changes.
    case garbage
    /// The call is handled normally but the `signature` field does not verify.
    case badSignature
    /// HTTP 429, with a `Retry-After` header when given; nothing changes.
    case throttle(retryAfterSeconds: Int?)
    /// HTTP 400 `{"error":"rate_limit_exceeded","error_description":"LOGIN_RATE_EXCEEDED ..."}`; nothing changes.
    case rateLimitBody
}

/// Counters of the calls the fake answered.
public struct FakeSalesforceStats: Sendable, Equatable {
    /// Every call to `/services/oauth2/token`, faulted or not.
    public var tokenCalls: Int = 0
    /// Token calls by the `grant_type` sent (`"none"` when missing or unreadable).
    public var tokenCallsByGrant: [String: Int] = [:]
    /// Calls to `/services/oauth2/revoke`.
    public var revokeCalls: Int = 0
    /// Calls to `/services/data/...` and the identity URL.
    public var dataCalls: Int = 0
    /// Calls to `/services/oauth2/authorize`.
    public var authorizeCalls: Int = 0
    /// Refresh token families revoked because a rotated-out refresh token was presented (lost refresh races).
    public var refreshFamiliesRevoked: Int = 0
    /// Refresh calls that arrived while another refresh of the same refresh token family was still being answered.
    public var overlappingRefreshes: Int = 0
    /// The most refresh calls of one family answered at the same time.
    public var maxConcurrentRefreshesPerFamily: Int = 0

    /// Creates zeroed counters.
    public init() {}
}
