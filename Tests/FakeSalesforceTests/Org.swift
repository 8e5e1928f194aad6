import Crypto
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import FakeSalesforce

/// A clock the tests move by hand.
final class TestClock: Sendable {
    private let date = Mutex(Date())
    var now: Date { date.withLock { $0 } }
    func advance(seconds: TimeInterval) { date.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A fake org with one web-server app and one user, called directly (no HTTP).
struct Org {
    static let base = "http://127.0.0.1:4999"
    static let redirect = "https://gateway.example/callback"
    let clock = TestClock()
    let core: FakeSalesforceCore
    var app = FakeConnectedApp(
        clientID: "3MVG9webapp", clientSecret: "s3cr3t-webapp", redirectURIs: [Org.redirect, "http://localhost/cb"])

    init(rotate: Bool = false, scopes: String = "api web refresh_token") {
        let clock = self.clock
        core = FakeSalesforceCore(baseURL: Self.base, logger: Logger(label: "test"), now: { clock.now })
        app.rotateRefreshTokens = rotate
        app.scopes = scopes
        core.register(app)
        core.addUser("alice@example.com")
    }

    func post(_ path: String, _ fields: [(String, String)], headers: [(String, String)] = []) -> FakeAnswer {
        core.answer(
            method: "POST", path: path, query: "",
            headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers,
            body: Array(Encoding.formBody(fields).utf8))
    }

    func token(_ fields: [(String, String)]) -> FakeAnswer { post("/services/oauth2/token", fields) }

    func code(username: String = "alice@example.com", challenge: String? = nil) -> String {
        core.issueAuthorizationCode(
            clientID: app.clientID, redirectURI: Org.redirect, username: username, codeChallenge: challenge)
    }

    func exchange(_ code: String, redirect: String = Org.redirect, secret: String? = nil, verifier: String? = nil)
        -> FakeAnswer
    {
        var fields = [
            ("grant_type", "authorization_code"), ("code", code), ("client_id", app.clientID),
            ("client_secret", secret ?? app.clientSecret), ("redirect_uri", redirect),
        ]
        if let verifier { fields.append(("code_verifier", verifier)) }
        return token(fields)
    }

    func refresh(_ refreshToken: String) -> FakeAnswer {
        token([
            ("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", app.clientID),
            ("client_secret", app.clientSecret),
        ])
    }

    func data(_ accessToken: String?, path: String = "/services/data/v60.0/") -> FakeAnswer {
        core.answer(
            method: "GET", path: path, query: "",
            headers: accessToken.map { [("Authorization", "Bearer " + $0)] } ?? [], body: [])
    }
}

func object(_ answer: FakeAnswer) -> [String: Any] {
    Encoding.jsonObject(answer.body) ?? [:]
}

func expectOAuthError(
    _ answer: FakeAnswer, _ error: String, _ description: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(answer.status == 400, sourceLocation: sourceLocation)
    let body = object(answer)
    #expect(body["error"] as? String == error, sourceLocation: sourceLocation)
    #expect(body["error_description"] as? String == description, sourceLocation: sourceLocation)
}

/// Recomputes Salesforce's signature independently: Base64(HMAC-SHA256(secret, id + issued_at)).
func signatureVerifies(_ body: [String: Any], secret: String) -> Bool {
    guard let id = body["id"] as? String, let issuedAt = body["issued_at"] as? String,
        let signature = body["signature"] as? String, let mac = Data(base64Encoded: signature)
    else { return false }
    return HMAC<SHA256>.isValidAuthenticationCode(
        mac, authenticating: Data((id + issuedAt).utf8), using: SymmetricKey(data: Data(secret.utf8)))
}

func pkceChallenge(_ verifier: String) -> String {
    Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}
