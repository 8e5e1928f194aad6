import Foundation
import Testing

@testable import FakeSalesforce

extension Org {
    /// An org whose web-server app has the given session timeout and unused-refresh-token policy.
    static func lifecycle(sessionSeconds: Int = 7200, unusedExpirySeconds: Int? = nil, rotate: Bool = false) -> Org {
        var org = Org(rotate: rotate)
        org.app.sessionTimeoutSeconds = sessionSeconds
        org.app.refreshTokenUnusedExpirySeconds = unusedExpirySeconds
        org.core.register(org.app)
        return org
    }

    /// Exchanges a fresh code: the access token, the refresh token and the whole body.
    func connect() throws -> (access: String, refresh: String, body: [String: Any]) {
        let body = object(exchange(code()))
        return (try #require(body["access_token"] as? String), try #require(body["refresh_token"] as? String), body)
    }

    func introspect(_ token: String?, clientID: String? = nil, secret: String? = nil) -> FakeAnswer {
        var fields = [
            ("client_id", clientID ?? app.clientID), ("client_secret", secret ?? app.clientSecret),
            ("token_type_hint", "access_token"),
        ]
        if let token { fields.insert(("token", token), at: 0) }
        return post("/services/oauth2/introspect", fields)
    }
}
