import Codecs
import Crypto
import Foundation
import HTTPServer
import TokenGatewayDomain
import TokenGatewayService
import TokenGatewayStore

/// Authorize links (`POST .../authorize`) and the page Salesforce redirects the browser to (`GET /callback`).
/// The state is single-use and kept in PostgreSQL (hashed), so any replica can complete the flow; the PKCE verifier
/// is sealed like every other secret.
extension GatewayAPI {
    static let stateLifetimeSeconds = 600.0

    func authorize(_ context: RequestContext) throws -> Reply {
        let tenant = try tenantParameter(context)
        let clientID = try clientParameter(context)
        let body = try body(context)
        try body.only(["connection", "scopes"])
        let connection = try body.id("connection", default: "default")
        let scopes = try body.strings("scopes", maxCount: 32, valid: ClientValidation.validScope)
        return .later { [self] in
            let client = try await requireClient(tenant, clientID)
            guard client.grantType == .authorizationCode else {
                throw GatewayError.invalidRequest(
                    "grant_type: authorize links are for authorization_code clients; '\(client.id)' uses \(client.grantType.rawValue)."
                )
            }
            guard let publicURL = configuration.publicURL else {
                throw GatewayError.invalidRequest(
                    "TOKEN_GATEWAY_PUBLIC_URL is not configured, so there is no /callback to redirect to; set it, or use /exchange."
                )
            }
            let state = Self.randomToken()
            let verifier = Self.randomToken()
            let challenge = Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
            let stateHash = KeyRegistry.hexHash(state)
            let redirect = publicURL + "/callback"
            let expires = TokenService.now + Self.stateLifetimeSeconds
            let sealed = try store.keyring.seal(
                verifier,
                for: .init(
                    field: "code_verifier", tenant: tenant, client: client.id, connection: stateHash))
            try await store.createAuthorizeState(
                hash: stateHash, tenant: tenant, client: client.id, connection: connection, sealedVerifier: sealed,
                redirectURI: redirect, expiresAt: expires, actor: context.caller.actor)
            var query: [(String, String)] = [
                ("response_type", "code"), ("client_id", client.clientID), ("redirect_uri", redirect),
            ]
            if let scope = scopes ?? client.scopes { query.append(("scope", scope.joined(separator: " "))) }
            query += [("state", state), ("code_challenge", challenge), ("code_challenge_method", "S256")]
            let url =
                client.authorizeEndpoint + "?" + query.map { "\($0.0)=\(Percent.encode($0.1))" }.joined(separator: "&")
            return Self.json(200) {
                $0.field("url", url)
                $0.field("expires_at", Timestamp.rfc3339(expires))
            }
        }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<32).map { _ in generator.next() })
    }

    static func htmlEscape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func page(_ status: Int, title: String, _ message: String) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/html; charset=utf-8")
        headers.add("Cache-Control", "no-store")
        headers.add("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        headers.add("X-Frame-Options", "DENY")
        headers.add("Referrer-Policy", "no-referrer")
        let html = """
            <!doctype html><html><head><meta charset="utf-8"><title>\(htmlEscape(title))</title>
            <style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;line-height:1.5}</style></head>
            <body><h1>\(htmlEscape(title))</h1><p>\(htmlEscape(message))</p></body></html>
            """
        return HTTPResponse(status: status, headers: headers, body: Array(html.utf8))
    }

    func callback(_ context: RequestContext) async -> HTTPResponse {
        // A link scanner or mail prefetcher sends HEAD: answer the page's headers and leave the state unspent.
        if context.request.method == "HEAD" {
            return Self.page(
                200, title: "Authorization", "Open this link in a browser to finish connecting to Salesforce.")
        }
        var parameters: [String: String] = [:]
        for (name, value) in context.request.queryItems() where parameters[name] == nil { parameters[name] = value }
        guard let state = parameters["state"], !state.isEmpty, state.count <= 256 else {
            return Self.page(
                400, title: "Missing state",
                "This page is only reached from a Salesforce login started by a gateway authorize link. Ask for a new link."
            )
        }
        let stateHash = KeyRegistry.hexHash(state)
        do {
            guard let claimed = try await store.claimAuthorizeState(hash: stateHash) else {
                let known = try await store.authorizeStateExists(hash: stateHash)
                return Self.page(
                    400, title: known ? "Link already used or expired" : "Unknown link",
                    "This authorization link is not valid any more. Ask an operator for a new authorize link and open it within 10 minutes."
                )
            }
            let (tenant, client, connection) = (claimed.tenant, claimed.client, claimed.connection)
            let (sealed, redirect) = (claimed.sealedVerifier, claimed.redirectURI)
            if let error = parameters["error"] {
                let description = parameters["error_description"].map { " (\($0.prefix(300)))" } ?? ""
                return Self.page(
                    400, title: "Salesforce did not authorize",
                    "Salesforce answered '\(error.prefix(64))'\(description) for client '\(client)'. Ask for a new authorize link and approve the access."
                )
            }
            guard let code = parameters["code"], !code.isEmpty, code.count <= 4096 else {
                return Self.page(
                    400, title: "No code", "Salesforce sent no authorization code. Ask for a new authorize link.")
            }
            let verifier = try store.keyring.open(
                sealed,
                for: .init(
                    field: "code_verifier", tenant: tenant, client: client, connection: stateHash))
            _ = try await tokens.exchange(
                ConnectionKey(tenant: tenant, client: client, connection: connection), code: code,
                redirectURI: redirect,
                codeVerifier: verifier, actor: "callback")
            return Self.page(
                200, title: "Connected",
                "Client '\(client)' of tenant '\(tenant)' is connected as connection '\(connection)'. You can close this page."
            )
        } catch let error as GatewayError {
            return Self.page(
                error.code.status >= 500 ? error.code.status : 400, title: "Authorization failed",
                "\(error.message) Ask for a new authorize link and try again.")
        } catch {
            context.logger.error("callback failed", metadata: ["error": "\(error)"])
            return Self.page(
                503, title: "Try again",
                "The gateway could not complete the authorization right now. Ask for a new authorize link.")
        }
    }
}
