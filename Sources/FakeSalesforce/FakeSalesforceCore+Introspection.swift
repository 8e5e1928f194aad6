import Foundation

/// `POST /services/oauth2/introspect`, as Salesforce documents it (RFC 7662 in Salesforce's shape).
///
/// What the fake models:
/// - A form with `token`, `token_type_hint`, `client_id` and `client_secret` (or the client as HTTP Basic).
///   The client must authenticate: an unknown `client_id`, a wrong or missing secret, or an app without a secret
///   answers 401 `invalid_client`. A missing or empty `token` then answers 400 `invalid_request`.
/// - `token_type_hint` is only a hint: access and refresh tokens are both looked up whatever it says.
/// - A live access token of the calling app answers `active`, `scope`, `client_id`, `username`, `sub` (the
///   identity URL), `token_type` `access_token`, and `iat` = `nbf` = its issue time, `exp` = `iat` + the app's
///   session timeout (seconds since the epoch). A usable refresh token answers the same without `exp`, `iat`, `nbf`.
/// - Anything else, including an expired, revoked or rotated-out token or another app's token, answers
///   `{"active": false}`.
/// - Every call is counted (`introspectionCalls`, `introspectionCallsByClient`), and consumes the next
///   `FakeIntrospectionFault` when one is queued.
extension FakeSalesforceCore {
    func introspectEndpoint(_ request: FakeRequest) -> FakeAnswer {
        var fields = request.method == "POST" ? request.formFields() : nil
        if fields != nil, fields?["client_id"] == nil, let (id, secret) = request.basicCredentials() {
            fields?["client_id"] = id
            fields?["client_secret"] = secret
        }
        let client = fields?["client_id"] ?? "none"
        let fault: FakeIntrospectionFault? = state.withLock {
            $0.stats.introspectionCalls += 1
            $0.stats.introspectionCallsByClient[client, default: 0] += 1
            return $0.introspectionFaults.isEmpty ? nil : $0.introspectionFaults.removeFirst()
        }
        switch fault {
        case .serverError:
            return .serverErrorPage
        case .garbage:
            return .text(200, "{\"active\":tr", contentType: "application/json;charset=UTF-8")
        case .throttle(let retryAfter):
            return .throttled(retryAfterSeconds: retryAfter)
        case .latency(let milliseconds):
            var answer = introspectionAnswer(request, fields: fields)
            answer.delay = .milliseconds(max(0, milliseconds))
            return answer
        case nil:
            return introspectionAnswer(request, fields: fields)
        }
    }

    private func introspectionAnswer(_ request: FakeRequest, fields: [String: String]?) -> FakeAnswer {
        guard request.method == "POST", let fields else {
            return .oauth(OAuthError(error: "invalid_request", description: "must POST a form"))
        }
        let date = now()
        let body: [String: Any]? = state.withLock { state in
            guard let app = state.authenticateIntrospector(fields) else { return nil }
            return state.introspection(of: fields["token"] ?? "", by: app, now: date)
        }
        guard let body else {
            let refused = OAuthError.invalidClient
            return .json(401, ["error": refused.error, "error_description": refused.description])
        }
        guard !(fields["token"] ?? "").isEmpty else {
            return .oauth(OAuthError(error: "invalid_request", description: "missing token parameter"))
        }
        return .json(200, body)
    }
}

extension FakeSalesforceState {
    /// The app whose `client_id` and `client_secret` were sent; introspection always needs the secret, so an app
    /// without one cannot introspect.
    func authenticateIntrospector(_ fields: [String: String]) -> FakeConnectedApp? {
        guard let clientID = fields["client_id"], let app = apps[clientID]?.app, !app.clientSecret.isEmpty,
            let secret = fields["client_secret"], constantTimeEquals(secret, app.clientSecret)
        else { return nil }
        return app
    }

    /// What introspection tells `app` about `token` at `now`: its claims, or `active: false`.
    func introspection(of token: String, by app: FakeConnectedApp, now: Date) -> [String: Any] {
        if let access = accessTokens[token], access.clientID == app.clientID, isLive(accessToken: token, now: now) {
            var body = claims(username: access.username, clientID: app.clientID, scope: access.scope)
            let issuedAt = Int(access.issuedAt.timeIntervalSince1970.rounded(.down))
            body["token_type"] = "access_token"
            body["iat"] = issuedAt
            body["nbf"] = issuedAt
            body["exp"] = Int(access.expiresAt.timeIntervalSince1970.rounded(.down))
            return body
        }
        if let refresh = refreshTokens[token], let family = families[refresh.familyID],
            family.clientID == app.clientID, isUsable(refresh, now: now)
        {
            var body = claims(username: family.username, clientID: app.clientID, scope: family.scope)
            body["token_type"] = "refresh_token"
            return body
        }
        return ["active": false]
    }

    private func claims(username: String, clientID: String, scope: String) -> [String: Any] {
        [
            "active": true, "scope": scope, "client_id": clientID, "username": username,
            "sub": Self.trimmingSlash(baseURL) + "/id/" + orgID + "/" + (users[username]?.userID ?? ""),
        ]
    }
}
