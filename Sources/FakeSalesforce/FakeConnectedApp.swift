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
    /// The session timeout of the app's access tokens (Salesforce: the org's or the app's, 2 hours by default).
    /// A token is dead from `issued_at` + this many seconds on: the data endpoint answers 401, introspection
    /// `active: false`, and introspection's `exp` says when. Fixed at issue: the fake does not model API activity
    /// extending a session, and changing the app later leaves tokens already issued as they were.
    public var sessionTimeoutSeconds: Int
    /// The refresh token policy "expire refresh token if not used for N": a refresh token not used for this many
    /// seconds is dead (`invalid_grant` "expired access/refresh token"); issuing it and each successful refresh
    /// with it restart its clock. Judged when the token is presented, with the app's policy at that moment.
    /// Nil is Salesforce's default, "valid until revoked".
    public var refreshTokenUnusedExpirySeconds: Int?

    /// Creates an app; every policy defaults to Salesforce's defaults for a new connected app.
    public init(
        clientID: String,
        clientSecret: String,
        redirectURIs: [String] = [],
        rotateRefreshTokens: Bool = false,
        jwtPublicKeyPEM: String? = nil,
        preApprovedUsers: Set<String> = [],
        clientCredentialsUser: String? = nil,
        scopes: String = "api web refresh_token",
        sessionTimeoutSeconds: Int = 7200,
        refreshTokenUnusedExpirySeconds: Int? = nil
    ) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURIs = redirectURIs
        self.rotateRefreshTokens = rotateRefreshTokens
        self.jwtPublicKeyPEM = jwtPublicKeyPEM
        self.preApprovedUsers = preApprovedUsers
        self.clientCredentialsUser = clientCredentialsUser
        self.scopes = scopes
        self.sessionTimeoutSeconds = sessionTimeoutSeconds
        self.refreshTokenUnusedExpirySeconds = refreshTokenUnusedExpirySeconds
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

/// A misbehaviour of the introspection endpoint, consumed one per introspection call in the order injected
/// (a queue of its own: token calls never consume these, nor introspections the token endpoint's).
public enum FakeIntrospectionFault: Sendable, Equatable {
    /// The call is answered normally but held back this long; a long latency is a hang for a client's timeout.
    case latency(milliseconds: Int)
    /// HTTP 500 with an HTML error page.
    case serverError
    /// HTTP 200 whose body is not JSON (a truncated object).
    case garbage
    /// HTTP 429, with a `Retry-After` header when given.
    case throttle(retryAfterSeconds: Int?)
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
    /// Refreshes refused because the refresh token had not been used for the app's
    /// `refreshTokenUnusedExpirySeconds`.
    public var refreshTokensExpiredUnused: Int = 0
    /// Every call to `/services/oauth2/introspect`, faulted or refused or not.
    public var introspectionCalls: Int = 0
    /// Introspection calls by the `client_id` sent (form field or HTTP Basic; `"none"` when missing or unreadable).
    public var introspectionCallsByClient: [String: Int] = [:]

    /// Creates zeroed counters.
    public init() {}
}
