import Crypto
import Foundation
import Logging
import Synchronization
import _CryptoExtras

/// Salesforce's OAuth endpoints (token, authorize, revoke, introspect), a data endpoint and the fake's control
/// endpoints, as a plain function from request to answer. All state sits behind one mutex, so concurrent calls
/// behave as Salesforce's serialised grants do (one of two racing refreshes of a rotating token loses).
public final class FakeSalesforceCore: Sendable {
    let state: Mutex<FakeSalesforceState>
    private let logger: Logger
    let now: @Sendable () -> Date

    /// Creates an empty org answering as `baseURL` (the login URL and instance URL); `now` is the fake's clock.
    public init(baseURL: String, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.state = Mutex(FakeSalesforceState(baseURL: baseURL))
        self.logger = logger
        self.now = now
    }

    /// The login and instance URL the fake answers as, e.g. `http://127.0.0.1:PORT`.
    public var baseURL: String {
        get { state.withLock { $0.baseURL } }
        set { state.withLock { $0.baseURL = newValue } }
    }

    /// The org's id (`00D...`), part of every identity URL and access token.
    public var orgID: String { state.withLock { $0.orgID } }

    /// Registers (or replaces) a connected app. An unreadable JWT key is logged and refuses JWT assertions.
    public func register(_ app: FakeConnectedApp) {
        var key: _RSA.Signing.PublicKey?
        if let pem = app.jwtPublicKeyPEM {
            key = try? _RSA.Signing.PublicKey(pemRepresentation: pem)
            if key == nil {
                logger.warning("JWT public key of app is unreadable", metadata: ["client_id": "\(app.clientID)"])
            }
        }
        let registered = RegisteredApp(app: app, jwtKey: key)
        state.withLock { $0.register(registered) }
    }

    /// Adds a user to the org, or sets the active flag of a known one.
    public func addUser(_ username: String, active: Bool = true) {
        state.withLock { _ = $0.upsertUser(username, active: active) }
    }

    /// Activates or deactivates a user (added when unknown).
    public func setUserActive(_ username: String, _ active: Bool) {
        addUser(username, active: active)
    }

    /// The user id (`005...`) of a known user.
    public func userID(of username: String) -> String? {
        state.withLock { $0.users[username]?.userID }
    }

    /// The user the authorize endpoint signs in and approves as; nil makes it answer `access_denied`.
    public func setAuthorizeUser(_ username: String?) {
        state.withLock {
            $0.authorizeUser = username
            if let username { _ = $0.ensureUser(username) }
        }
    }

    /// Simulates a person approving the app in a browser: a fresh single-use code bound to the client,
    /// redirect URI, user (added as active when unknown) and optional S256 PKCE challenge.
    public func issueAuthorizationCode(
        clientID: String, redirectURI: String, username: String, codeChallenge: String? = nil
    ) -> String {
        let date = now()
        return state.withLock {
            $0.issueCode(
                clientID: clientID, redirectURI: redirectURI, username: username, codeChallenge: codeChallenge,
                now: date)
        }
    }

    /// Queues faults, consumed one per token endpoint call in order.
    public func injectFaults(_ faults: [FakeFault]) {
        state.withLock { $0.faults.append(contentsOf: faults) }
    }

    /// Queues faults of the introspection endpoint, consumed one per introspection call in order.
    public func injectIntrospectionFaults(_ faults: [FakeIntrospectionFault]) {
        state.withLock { $0.introspectionFaults.append(contentsOf: faults) }
    }

    /// Revokes every refresh and access token of a user.
    public func revokeAll(username: String) {
        state.withLock { $0.revokeAll(username: username) }
    }

    /// The call counters so far.
    public var stats: FakeSalesforceStats { state.withLock { $0.stats } }

    /// True when the access token was issued by this fake, is neither revoked nor in a revoked family, and its
    /// session has not timed out by the fake's clock.
    public func isLiveAccessToken(_ token: String) -> Bool {
        let date = now()
        return state.withLock { $0.isLive(accessToken: token, now: date) }
    }

    /// When an access token issued here times out (`issued_at` + its app's session timeout), live or not;
    /// nil for a token the fake never issued.
    public func accessTokenExpiry(_ token: String) -> Date? {
        state.withLock { $0.accessTokens[token]?.expiresAt }
    }

    /// Every refresh token issued to the client, live or not, oldest first (for tests that look for leaks).
    public func refreshTokens(clientID: String) -> [String] {
        state.withLock { state in
            state.families.sorted { $0.key < $1.key }.filter { $0.value.clientID == clientID }
                .flatMap { $0.value.refreshTokens }
        }
    }

    /// Handles one request; the answer says how long to hold it back when a latency fault applies.
    public func answer(method: String, path: String, query: String, headers: [(String, String)], body: [UInt8])
        -> FakeAnswer
    {
        let request = FakeRequest(method: method.uppercased(), path: path, query: query, headers: headers, body: body)
        let answer = route(request)
        logger.debug(
            "fake salesforce answered",
            metadata: ["method": "\(request.method)", "path": "\(path)", "status": "\(answer.status)"])
        return answer
    }

    private func route(_ request: FakeRequest) -> FakeAnswer {
        let path = request.path
        switch path {
        case "/services/oauth2/token":
            return tokenEndpoint(request)
        case "/services/oauth2/authorize":
            return authorizeEndpoint(request)
        case "/services/oauth2/revoke":
            return revokeEndpoint(request)
        case "/services/oauth2/introspect":
            return introspectEndpoint(request)
        default:
            break
        }
        if path == "/services/data" || path.hasPrefix("/services/data/") { return dataEndpoint(request) }
        if path.hasPrefix("/id/") { return identityEndpoint(request) }
        if path.hasPrefix("/__fake/") { return controlEndpoint(request) }
        return .json(404, [["errorCode": "NOT_FOUND", "message": "The requested resource does not exist"]])
    }

    // MARK: Token endpoint

    private func tokenEndpoint(_ request: FakeRequest) -> FakeAnswer {
        let fields = request.formFields()
        let clientID = fields?["client_id"] ?? fields?["assertion"].flatMap(JWTAssertion.unverifiedIssuer(of:))
        // A refresh is in flight from its arrival until its (possibly held back) answer goes out.
        let family = state.withLock { state -> Int? in
            guard fields?["grant_type"] == "refresh_token", let token = fields?["refresh_token"],
                let family = state.refreshTokens[token]?.familyID
            else { return nil }
            let running = state.refreshesInFlight[family, default: 0]
            if running > 0 { state.stats.overlappingRefreshes += 1 }
            state.refreshesInFlight[family] = running + 1
            state.stats.maxConcurrentRefreshesPerFamily = max(
                state.stats.maxConcurrentRefreshesPerFamily, running + 1)
            return family
        }
        var answer = faultedTokenAnswer(request, fields: fields)
        if let clientID, let latency = state.withLock({ $0.apps[clientID]?.app.tokenLatencyMilliseconds }),
            latency > 0
        {
            answer.delay = max(answer.delay ?? .zero, .milliseconds(latency))
        }
        if let family {
            let finished: @Sendable () -> Void = { [self] in
                state.withLock { $0.refreshesInFlight[family, default: 1] -= 1 }
            }
            if answer.delay == nil { finished() } else { answer.completion = finished }
        }
        return answer
    }

    private func faultedTokenAnswer(_ request: FakeRequest, fields: [String: String]?) -> FakeAnswer {
        let grant = fields?["grant_type"] ?? "none"
        let fault: FakeFault? = state.withLock {
            $0.stats.tokenCalls += 1
            $0.stats.tokenCallsByGrant[grant, default: 0] += 1
            return $0.faults.isEmpty ? nil : $0.faults.removeFirst()
        }
        switch fault {
        case .serverError:
            return .serverErrorPage
        case .garbage:
            return .text(200, "{\"access_token\":\"00D", contentType: "application/json;charset=UTF-8")
        case .throttle(let retryAfter):
            return .throttled(retryAfterSeconds: retryAfter)
        case .rateLimitBody:
            return .oauth(
                OAuthError(
                    error: "rate_limit_exceeded", description: "LOGIN_RATE_EXCEEDED: too many logins for this user"))
        case .latency(let milliseconds):
            var answer = grantAnswer(request, fields: fields, corruptSignature: false)
            answer.delay = .milliseconds(max(0, milliseconds))
            return answer
        case .badSignature:
            return grantAnswer(request, fields: fields, corruptSignature: true)
        case nil:
            return grantAnswer(request, fields: fields, corruptSignature: false)
        }
    }

    private func grantAnswer(_ request: FakeRequest, fields: [String: String]?, corruptSignature: Bool) -> FakeAnswer {
        guard request.method == "POST" else {
            return .oauth(OAuthError(error: "invalid_request", description: "must use HTTP POST"))
        }
        guard var fields else {
            return .oauth(
                OAuthError(
                    error: "invalid_request",
                    description: "request body must be application/x-www-form-urlencoded"))
        }
        // Salesforce also takes the client's credentials as HTTP Basic authentication.
        if fields["client_id"] == nil, let (id, secret) = request.basicCredentials() {
            fields["client_id"] = id
            fields["client_secret"] = secret
        }
        let date = now()
        let result: Result<IssuedTokens, OAuthError>
        switch fields["grant_type"] {
        case "authorization_code":
            result = state.withLock { state in
                Result { () throws(OAuthError) in try state.exchangeCode(fields, now: date) }
            }
        case "refresh_token":
            let outcome = state.withLock { $0.refresh(fields, now: date) }
            switch outcome {
            case .issued(let tokens):
                result = .success(tokens)
            case .refused(let error, let revoked):
                if let revoked {
                    logger.info(
                        "rotated-out refresh token presented; refresh token family revoked",
                        metadata: ["client_id": "\(revoked.clientID)", "username": "\(revoked.username)"])
                }
                result = .failure(error)
            }
        case "urn:ietf:params:oauth:grant-type:jwt-bearer":
            result = jwtBearer(fields["assertion"], now: date)
        case "client_credentials":
            result = state.withLock { state in
                Result { () throws(OAuthError) in try state.clientCredentials(fields, now: date) }
            }
        default:
            result = .failure(.unsupportedGrant)
        }
        switch result {
        case .failure(let error):
            return .oauth(error)
        case .success(let tokens):
            return .json(200, tokenBody(tokens, corruptSignature: corruptSignature))
        }
    }

    private func jwtBearer(_ assertion: String?, now date: Date) -> Result<IssuedTokens, OAuthError> {
        guard let assertion, let issuer = JWTAssertion.unverifiedIssuer(of: assertion) else {
            return .failure(.invalidAssertion)
        }
        let registered = state.withLock { $0.apps[issuer] }
        guard let registered else { return .failure(.invalidClientID) }
        guard let key = registered.jwtKey else { return .failure(.invalidAssertion) }
        // The RSA check runs outside the lock: it is the one expensive step.
        let verified: JWTAssertion
        do { verified = try JWTAssertion.verify(assertion, key: key) } catch { return .failure(.invalidAssertion) }
        return state.withLock { state in Result { () throws(OAuthError) in try state.jwtBearer(verified, now: date) } }
    }

    private func tokenBody(_ tokens: IssuedTokens, corruptSignature: Bool) -> [String: Any] {
        let (base, orgID) = state.withLock { ($0.baseURL, $0.orgID) }
        let id = FakeSalesforceState.trimmingSlash(base) + "/id/" + orgID + "/" + tokens.userID
        let issuedAt = String(tokens.issuedAtMilliseconds)
        let key =
            corruptSignature
            ? SymmetricKey(size: .bits256) : SymmetricKey(data: Array(tokens.signatureKey.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array((id + issuedAt).utf8), using: key)
        var body: [String: Any] = [
            "access_token": tokens.accessToken,
            "signature": Data(mac).base64EncodedString(),
            "scope": tokens.scope,
            "instance_url": FakeSalesforceState.trimmingSlash(base),
            "id": id,
            "token_type": "Bearer",
            "issued_at": issuedAt,
        ]
        if let refresh = tokens.refreshToken { body["refresh_token"] = refresh }
        return body
    }

    // MARK: Authorize and revoke

    private func authorizeEndpoint(_ request: FakeRequest) -> FakeAnswer {
        state.withLock { $0.stats.authorizeCalls += 1 }
        guard request.method == "GET" else { return errorPage(405, "invalid_request", "must use HTTP GET") }
        guard let query = Encoding.formFields(request.query) else {
            return errorPage(400, "invalid_request", "malformed query string")
        }
        let clientID = query["client_id"] ?? ""
        let redirectURI = query["redirect_uri"] ?? ""
        let registered = state.withLock { $0.apps[clientID] }
        guard let app = registered?.app else {
            return errorPage(400, OAuthError.invalidClientID.error, OAuthError.invalidClientID.description)
        }
        guard app.redirectURIs.contains(redirectURI) else {
            return errorPage(400, OAuthError.redirectMismatch.error, OAuthError.redirectMismatch.description)
        }
        // From here on errors go back to the client's redirect URI, as OAuth prescribes.
        let state = query["state"]
        guard query["response_type"] == "code" else {
            return redirect(
                redirectURI,
                [("error", "unsupported_response_type"), ("error_description", "response type not supported")],
                state: state)
        }
        let challenge = query["code_challenge"].flatMap { $0.isEmpty ? nil : $0 }
        if challenge != nil, let method = query["code_challenge_method"], method != "S256" {
            return redirect(
                redirectURI, [("error", "invalid_request"), ("error_description", "invalid code_challenge_method")],
                state: state)
        }
        guard let username = self.state.withLock({ $0.authorizeUser }) else {
            return redirect(
                redirectURI, [("error", "access_denied"), ("error_description", "end-user denied authorization")],
                state: state)
        }
        let code = issueAuthorizationCode(
            clientID: clientID, redirectURI: redirectURI, username: username, codeChallenge: challenge)
        return redirect(redirectURI, [("code", code)], state: state)
    }

    private func redirect(_ uri: String, _ parameters: [(String, String)], state: String?) -> FakeAnswer {
        var parameters = parameters
        if let state { parameters.append(("state", state)) }
        let separator = uri.contains("?") ? "&" : "?"
        let location = uri + separator + Encoding.formBody(parameters)
        return FakeAnswer(status: 302, headers: [("Location", location), FakeAnswer.noStore], body: [])
    }

    private func errorPage(_ status: Int, _ error: String, _ description: String) -> FakeAnswer {
        let detail = "error=" + error + "&error_description=" + Encoding.percentEncode(description)
        return .text(
            status, "<html><head><title>Error</title></head><body><p>\(detail)</p></body></html>",
            contentType: "text/html;charset=UTF-8")
    }

    private func revokeEndpoint(_ request: FakeRequest) -> FakeAnswer {
        state.withLock { $0.stats.revokeCalls += 1 }
        let fields: [String: String]?
        switch request.method {
        case "POST": fields = request.formFields()
        case "GET": fields = Encoding.formFields(request.query)
        default: fields = nil
        }
        guard let token = fields?["token"], !token.isEmpty else {
            return .oauth(OAuthError(error: "invalid_request", description: "missing token parameter"))
        }
        let date = now()
        let revoked = state.withLock { $0.revoke(token: token, now: date) }
        guard revoked else {
            return .oauth(OAuthError(error: "unsupported_token_type", description: "this token type is not supported"))
        }
        return FakeAnswer(status: 200, headers: [FakeAnswer.noStore], body: [])
    }
}
