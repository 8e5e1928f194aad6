import Foundation

/// The data endpoint (`/services/data/...`) and the identity URL: both accept only live access tokens.
extension FakeSalesforceCore {
    private static let invalidSession: [[String: String]] = [
        ["message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"]
    ]

    /// The username of a live access token (issued here, not revoked, session not timed out), or nil.
    private func authenticatedUser(_ request: FakeRequest) -> String? {
        guard let authorization = request.header("Authorization"), authorization.lowercased().hasPrefix("bearer ")
        else { return nil }
        let token = String(authorization.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        let date = now()
        return state.withLock { state in
            guard state.isLive(accessToken: token, now: date) else { return nil }
            return state.accessTokens[token]?.username
        }
    }

    func dataEndpoint(_ request: FakeRequest) -> FakeAnswer {
        state.withLock { $0.stats.dataCalls += 1 }
        guard let username = authenticatedUser(request) else {
            return .json(401, Self.invalidSession, headers: [("WWW-Authenticate", "Token")])
        }
        let components = request.path.split(separator: "/")
        if components.count == 3 {
            let version = components[2]
            return .json(
                200,
                [
                    "sobjects": "/services/data/\(version)/sobjects",
                    "query": "/services/data/\(version)/query",
                    "limits": "/services/data/\(version)/limits",
                ])
        }
        if components.count == 2 {
            return .json(200, [["label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"]])
        }
        return .json(200, ["path": request.path, "username": username, "totalSize": 0, "done": true, "records": []])
    }

    func identityEndpoint(_ request: FakeRequest) -> FakeAnswer {
        state.withLock { $0.stats.dataCalls += 1 }
        guard authenticatedUser(request) != nil else {
            return .text(403, "Bad_OAuth_Token")
        }
        let components = request.path.split(separator: "/")
        let body: [String: Any]? = state.withLock { state in
            guard components.count == 3, components[1] == state.orgID,
                let (username, user) = state.users.first(where: { $0.value.userID == components[2] })
            else { return nil }
            return [
                "id": FakeSalesforceState.trimmingSlash(state.baseURL) + request.path,
                "user_id": user.userID, "organization_id": state.orgID, "username": username, "active": user.active,
            ]
        }
        guard let body else { return .text(404, "Bad_Id") }
        return .json(200, body)
    }
}
