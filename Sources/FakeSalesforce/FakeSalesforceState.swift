import Crypto
import Foundation
import _CryptoExtras

/// An OAuth error answer: HTTP 400 with `{"error", "error_description"}`, as Salesforce's token endpoint sends.
struct OAuthError: Error, Equatable {
    var error: String
    var description: String

    static let invalidClientID = OAuthError(error: "invalid_client_id", description: "client identifier invalid")
    static let invalidClient = OAuthError(error: "invalid_client", description: "invalid client credentials")
    static let unsupportedGrant = OAuthError(error: "unsupported_grant_type", description: "grant type not supported")
    static let redirectMismatch = OAuthError(
        error: "redirect_uri_mismatch", description: "redirect_uri must match configuration")
    static func invalidGrant(_ description: String) -> OAuthError {
        OAuthError(error: "invalid_grant", description: description)
    }
    static let expiredCode = invalidGrant("expired authorization code")
    static let invalidCode = invalidGrant("invalid authorization code")
    static let invalidVerifier = invalidGrant("invalid code verifier")
    static let expiredToken = invalidGrant("expired access/refresh token")
    static let invalidAssertion = invalidGrant("invalid assertion")
    static let audienceFailed = invalidGrant("Audience validation failed")
    static let notApproved = invalidGrant("user hasn't approved this consumer")
    static let inactiveUser = invalidGrant("inactive user")
    static let unsupportedDomain = invalidGrant("request not supported on this domain")
}

/// What a successful grant produced; the JSON body (with its HMAC signature) is built outside the lock.
struct IssuedTokens: Sendable {
    var accessToken: String
    var refreshToken: String?
    var scope: String
    var userID: String
    var issuedAtMilliseconds: Int64
    var signatureKey: String
}

/// A registered app with its JWT key already parsed.
struct RegisteredApp: Sendable {
    var app: FakeConnectedApp
    var jwtKey: _RSA.Signing.PublicKey?
}

/// The org's mutable state, guarded by the core's mutex. Every method runs with the lock held,
/// so each grant is atomic: two refreshes of one token cannot both see it current.
struct FakeSalesforceState {
    struct User {
        var userID: String
        var active: Bool
    }

    struct AuthorizationCode {
        var clientID: String
        var redirectURI: String
        var username: String
        var codeChallenge: String?
        var issuedAt: Date
        var used: Bool
    }

    enum RefreshStatus { case current, rotatedOut, revoked }

    struct RefreshToken {
        var familyID: Int
        var status: RefreshStatus
        /// When it was issued or last refreshed with, for the app's "expire if not used for N" policy.
        var lastUsedAt: Date
    }

    /// The refresh tokens descending from one approval, with every access token they produced.
    struct Family {
        var clientID: String
        var username: String
        var scope: String
        var refreshTokens: [String]
        var accessTokens: [String]
        var revoked: Bool
    }

    struct AccessToken {
        var clientID: String
        var username: String
        var scope: String
        var familyID: Int?
        var live: Bool
        var issuedAt: Date
        /// `issuedAt` + the app's session timeout at issue.
        var expiresAt: Date
    }

    /// How long an authorization code may wait before its exchange (Salesforce: 15 minutes).
    static let codeLifetime: TimeInterval = 15 * 60
    /// The longest JWT `exp` ahead of now that is accepted (Salesforce: 3 minutes) ...
    static let maxAssertionLifetime: TimeInterval = 3 * 60
    /// ... plus this much clock skew.
    static let clockSkew: TimeInterval = 30
    /// Approvals (refresh token families) kept per app and user; the next one revokes the oldest.
    static let maxApprovalsPerUser = 5

    var baseURL: String
    let orgID: String = "00D" + Encoding.randomAlphanumeric(12)
    var apps: [String: RegisteredApp] = [:]
    var users: [String: User] = [:]
    var authorizeUser: String?
    var codes: [String: AuthorizationCode] = [:]
    var refreshTokens: [String: RefreshToken] = [:]
    var families: [Int: Family] = [:]
    var nextFamilyID = 1
    var accessTokens: [String: AccessToken] = [:]
    var usedJWTIDs: Set<String> = []
    var faults: [FakeFault] = []
    var introspectionFaults: [FakeIntrospectionFault] = []
    var stats = FakeSalesforceStats()
    /// Refresh calls being answered, by refresh token family.
    var refreshesInFlight: [Int: Int] = [:]

    init(baseURL: String) {
        self.baseURL = baseURL
    }

    // MARK: Org administration

    /// Adds a user (or changes its active flag) and returns its record.
    @discardableResult
    mutating func upsertUser(_ username: String, active: Bool) -> User {
        var user = users[username] ?? User(userID: "005" + Encoding.randomAlphanumeric(12), active: active)
        user.active = active
        users[username] = user
        return user
    }

    /// The user, added as active when the org does not know it yet.
    mutating func ensureUser(_ username: String) -> User {
        if let user = users[username] { return user }
        return upsertUser(username, active: true)
    }

    mutating func register(_ registered: RegisteredApp) {
        apps[registered.app.clientID] = registered
        for username in registered.app.preApprovedUsers { _ = ensureUser(username) }
        if let runAs = registered.app.clientCredentialsUser { _ = ensureUser(runAs) }
    }

    mutating func issueCode(clientID: String, redirectURI: String, username: String, codeChallenge: String?, now: Date)
        -> String
    {
        _ = ensureUser(username)
        // Shaped like Salesforce's codes: letters and digits with a '.', ending in "==".
        let code = "aPrx" + Encoding.randomAlphanumeric(44) + "." + Encoding.randomAlphanumeric(30) + "=="
        codes[code] = AuthorizationCode(
            clientID: clientID, redirectURI: redirectURI, username: username, codeChallenge: codeChallenge,
            issuedAt: now, used: false)
        return code
    }

    mutating func revokeFamily(_ id: Int) {
        guard var family = families[id], !family.revoked else { return }
        family.revoked = true
        for token in family.refreshTokens { refreshTokens[token]?.status = .revoked }
        for token in family.accessTokens { accessTokens[token]?.live = false }
        families[id] = family
    }

    mutating func revokeAll(username: String) {
        for (id, family) in families where family.username == username { revokeFamily(id) }
        for (token, record) in accessTokens where record.username == username && record.live {
            accessTokens[token]?.live = false
        }
    }

    /// Revokes a live refresh token (with its family) or a live access token; false when the token is not live.
    mutating func revoke(token: String, now: Date) -> Bool {
        if let refresh = refreshTokens[token], isUsable(refresh, now: now) {
            revokeFamily(refresh.familyID)
            return true
        }
        if isLive(accessToken: token, now: now) {
            accessTokens[token]?.live = false
            return true
        }
        return false
    }

    /// Issued here, not revoked, and its session has not timed out.
    func isLive(accessToken: String, now: Date) -> Bool {
        guard let record = accessTokens[accessToken] else { return false }
        return record.live && now < record.expiresAt
    }

    /// Current (not rotated out or revoked) and not expired under its app's "expire if not used for N" policy.
    func isUsable(_ refresh: RefreshToken, now: Date) -> Bool {
        refresh.status == .current && !isExpiredUnused(refresh, now: now)
    }

    /// True when the family's app expires unused refresh tokens and this one has waited that long.
    func isExpiredUnused(_ refresh: RefreshToken, now: Date) -> Bool {
        guard let clientID = families[refresh.familyID]?.clientID,
            let limit = apps[clientID]?.app.refreshTokenUnusedExpirySeconds
        else { return false }
        return now.timeIntervalSince(refresh.lastUsedAt) >= TimeInterval(limit)
    }

    // MARK: Grants

    /// Checks `client_id` and, when the app has a secret, `client_secret`.
    func authenticateClient(_ fields: [String: String]) throws(OAuthError) -> FakeConnectedApp {
        guard let clientID = fields["client_id"], let registered = apps[clientID] else { throw .invalidClientID }
        let app = registered.app
        if !app.clientSecret.isEmpty {
            guard let secret = fields["client_secret"], constantTimeEquals(secret, app.clientSecret) else {
                throw .invalidClient
            }
        }
        return app
    }

    mutating func exchangeCode(_ fields: [String: String], now: Date) throws(OAuthError) -> IssuedTokens {
        let app = try authenticateClient(fields)
        guard let code = fields["code"], let record = codes[code], record.clientID == app.clientID else {
            throw .invalidCode
        }
        guard !record.used, now.timeIntervalSince(record.issuedAt) <= Self.codeLifetime else { throw .expiredCode }
        guard fields["redirect_uri"] == record.redirectURI else { throw .redirectMismatch }
        if let challenge = record.codeChallenge {
            guard let verifier = fields["code_verifier"],
                Encoding.base64URL(SHA256.hash(data: Array(verifier.utf8))) == challenge
            else { throw .invalidVerifier }
        }
        guard let user = users[record.username], user.active else { throw .inactiveUser }
        codes[code]?.used = true

        var familyID: Int?
        var refreshToken: String?
        if app.issuesRefreshTokens {
            let id = startFamily(clientID: app.clientID, username: record.username, scope: app.scopes)
            let token = newRefreshToken(familyID: id, now: now)
            familyID = id
            refreshToken = token
        }
        let access = newAccessToken(
            clientID: app.clientID, username: record.username, scope: app.scopes, familyID: familyID, now: now)
        return IssuedTokens(
            accessToken: access, refreshToken: refreshToken, scope: app.scopes, userID: user.userID,
            issuedAtMilliseconds: Self.milliseconds(now), signatureKey: app.clientSecret)
    }

    /// The outcome of a refresh, including the case where a rotated-out token just cost the family.
    enum RefreshOutcome {
        case issued(IssuedTokens)
        case refused(OAuthError, familyRevoked: (clientID: String, username: String)?)
    }

    mutating func refresh(_ fields: [String: String], now: Date) -> RefreshOutcome {
        let app: FakeConnectedApp
        do { app = try authenticateClient(fields) } catch { return .refused(error, familyRevoked: nil) }
        guard let token = fields["refresh_token"], let record = refreshTokens[token],
            let family = families[record.familyID], family.clientID == app.clientID
        else { return .refused(.expiredToken, familyRevoked: nil) }
        switch record.status {
        case .revoked:
            return .refused(.expiredToken, familyRevoked: nil)
        case .rotatedOut:
            // A rotated-out token was presented: Salesforce revokes the current token and its access tokens.
            revokeFamily(record.familyID)
            stats.refreshFamiliesRevoked += 1
            return .refused(.expiredToken, familyRevoked: (family.clientID, family.username))
        case .current:
            break
        }
        if isExpiredUnused(record, now: now) {
            stats.refreshTokensExpiredUnused += 1
            return .refused(.expiredToken, familyRevoked: nil)
        }
        guard let user = users[family.username], user.active else { return .refused(.inactiveUser, familyRevoked: nil) }
        var newRefresh: String?
        if app.rotateRefreshTokens {
            refreshTokens[token]?.status = .rotatedOut
            newRefresh = newRefreshToken(familyID: record.familyID, now: now)
        } else {
            refreshTokens[token]?.lastUsedAt = now
        }
        let access = newAccessToken(
            clientID: app.clientID, username: family.username, scope: family.scope, familyID: record.familyID, now: now)
        return .issued(
            IssuedTokens(
                accessToken: access, refreshToken: newRefresh, scope: family.scope, userID: user.userID,
                issuedAtMilliseconds: Self.milliseconds(now), signatureKey: app.clientSecret))
    }

    /// Judges the claims of an assertion whose signature has been verified, and issues an access token.
    mutating func jwtBearer(_ assertion: JWTAssertion, now: Date) throws(OAuthError) -> IssuedTokens {
        guard let registered = apps[assertion.issuer] else { throw .invalidClientID }
        let app = registered.app
        let allowedAudiences = [
            "https://login.salesforce.com", "https://test.salesforce.com", Self.trimmingSlash(baseURL),
        ]
        guard assertion.audiences.contains(where: { allowedAudiences.contains(Self.trimmingSlash($0)) }) else {
            throw .audienceFailed
        }
        let nowSeconds = now.timeIntervalSince1970
        guard assertion.expiresAt > nowSeconds,
            assertion.expiresAt <= nowSeconds + Self.maxAssertionLifetime + Self.clockSkew
        else { throw .invalidAssertion }
        if let jwtID = assertion.jwtID, usedJWTIDs.contains(assertion.issuer + "\n" + jwtID) {
            throw .invalidAssertion
        }
        guard app.preApprovedUsers.contains(assertion.subject), let user = users[assertion.subject] else {
            throw .notApproved
        }
        guard user.active else { throw .inactiveUser }
        if let jwtID = assertion.jwtID { usedJWTIDs.insert(assertion.issuer + "\n" + jwtID) }
        let access = newAccessToken(
            clientID: app.clientID, username: assertion.subject, scope: app.scopes, familyID: nil, now: now)
        return IssuedTokens(
            accessToken: access, refreshToken: nil, scope: app.scopes, userID: user.userID,
            issuedAtMilliseconds: Self.milliseconds(now), signatureKey: app.clientSecret)
    }

    mutating func clientCredentials(_ fields: [String: String], now: Date) throws(OAuthError) -> IssuedTokens {
        let app = try authenticateClient(fields)
        guard let runAs = app.clientCredentialsUser else { throw .unsupportedDomain }
        guard let user = users[runAs], user.active else { throw .inactiveUser }
        let access = newAccessToken(clientID: app.clientID, username: runAs, scope: app.scopes, familyID: nil, now: now)
        return IssuedTokens(
            accessToken: access, refreshToken: nil, scope: app.scopes, userID: user.userID,
            issuedAtMilliseconds: Self.milliseconds(now), signatureKey: app.clientSecret)
    }

    // MARK: Token minting

    private mutating func startFamily(clientID: String, username: String, scope: String) -> Int {
        let live = families.filter {
            $0.value.clientID == clientID && $0.value.username == username && !$0.value.revoked
        }
        if live.count >= Self.maxApprovalsPerUser, let oldest = live.keys.min() {
            revokeFamily(oldest)
        }
        let id = nextFamilyID
        nextFamilyID += 1
        families[id] = Family(
            clientID: clientID, username: username, scope: scope, refreshTokens: [], accessTokens: [], revoked: false)
        return id
    }

    private mutating func newRefreshToken(familyID: Int, now: Date) -> String {
        let token = "5Aep861" + Encoding.randomTokenCharacters(80)
        refreshTokens[token] = RefreshToken(familyID: familyID, status: .current, lastUsedAt: now)
        families[familyID]?.refreshTokens.append(token)
        return token
    }

    private mutating func newAccessToken(clientID: String, username: String, scope: String, familyID: Int?, now: Date)
        -> String
    {
        let token = orgID + "!AQ" + Encoding.randomTokenCharacters(94)
        let session = TimeInterval(apps[clientID]?.app.sessionTimeoutSeconds ?? 7200)
        accessTokens[token] = AccessToken(
            clientID: clientID, username: username, scope: scope, familyID: familyID, live: true, issuedAt: now,
            expiresAt: now.addingTimeInterval(session))
        if let familyID { families[familyID]?.accessTokens.append(token) }
        return token
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    static func trimmingSlash(_ url: String) -> String {
        url.hasSuffix("/") ? String(url.dropLast()) : url
    }
}

/// Compares two secrets without an early exit on the first differing byte.
func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let left = Array(lhs.utf8)
    let right = Array(rhs.utf8)
    guard left.count == right.count else { return false }
    var difference: UInt8 = 0
    for index in left.indices { difference |= left[index] ^ right[index] }
    return difference == 0
}
