import Codecs
import HTTPClient
import Logging
import TokenGatewayDomain
import TokenGatewayStore

extension SalesforceTokenEndpoint {
    /// Asks Salesforce when a new access token expires: `POST {login_url}/services/oauth2/introspect` with
    /// `token`, `token_type_hint=access_token` and the client's id and secret. One attempt, never retried (the
    /// caller falls back to `token_ttl_seconds`); `timeout` overrides the HTTP client's total timeout. Returns
    /// `exp`, in seconds since the epoch, when Salesforce says `active: true`. Each call made is counted in
    /// `token_gateway_introspections_total{outcome}`.
    public func introspect(accessToken: String, client: Client, timeout: Duration? = nil)
        async throws(IntrospectionFailure) -> Int64
    {
        do {
            let exp = try await introspectOnce(accessToken: accessToken, client: client, timeout: timeout)
            metrics.introspection(outcome: .active)
            return exp
        } catch {
            if let outcome = error.outcome { metrics.introspection(outcome: outcome) }
            logger.warning(
                "salesforce introspection gave no expiry; token_ttl_seconds applies",
                metadata: ["tenant": "\(client.tenant)", "client": "\(client.id)", "failure": "\(error)"])
            throw error
        }
    }

    private func introspectOnce(accessToken: String, client: Client, timeout: Duration?)
        async throws(IntrospectionFailure) -> Int64
    {
        guard let secret = client.clientSecret else { throw .noClientSecret }
        let request = HTTPClientRequest.form(
            url: client.introspectEndpoint,
            fields: [
                ("token", accessToken), ("token_type_hint", "access_token"), ("client_id", client.clientID),
                ("client_secret", secret),
            ],
            headers: [("Accept", "application/json")], timeout: timeout)
        let response: HTTPClientResponse
        do {
            response = try await http.send(request)
        } catch {
            switch Self.transportFailure(error) {
            case .timeout: throw .timeout
            case .unreachable: throw .unreachable
            default: throw .transport
            }
        }
        return try Self.readIntrospection(status: response.status, body: response.body)
    }

    /// Reads an introspection answer: `exp` (seconds since the epoch; 13 digits are read as milliseconds) when
    /// `active` is true. Pure, so each shape is unit-tested.
    public static func readIntrospection(status: Int, body: [UInt8]) throws(IntrospectionFailure) -> Int64 {
        let json = try? JSONValue.parse(body)
        if status >= 500 { throw .serverError(status: status) }
        if status >= 400 {
            throw .refused(
                UpstreamDetails(
                    status: status, error: json?["error"]?.stringValue.map { String($0.prefix(200)) },
                    errorDescription: json?["error_description"]?.stringValue.map { String($0.prefix(500)) }))
        }
        guard status == 200, case .bool(let active)? = json?["active"] else { throw .unreadable(status: status) }
        guard active else { throw .inactive }
        let number: Double?
        switch json?["exp"] {
        case .number(let value): number = value
        case .string(let text): number = Double(text)
        default: number = nil
        }
        guard let number, number.rounded() == number, number > 0, number < 1e16 else {
            throw .unreadable(status: status)
        }
        let exp = Int64(number)
        return exp >= 1_000_000_000_000 ? exp / 1000 : exp
    }
}
