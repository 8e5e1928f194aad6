import Codecs

/// How a failed Salesforce call becomes the contract's error: which code, which sentence, which upstream details.

extension GatewayError {
    /// A connection whose grant Salesforce no longer accepts: a person must authorize again.
    public static func reauthorization(_ message: String, upstream: UpstreamDetails?) -> GatewayError {
        GatewayError(.reauthorizationRequired, message: message, upstream: upstream)
    }

}

extension SalesforceFailure {
    /// The contract's answer to this failed Salesforce call made with `grant`: the error mapping table. Pure.
    public func gatewayError(grant: TokenGrant) -> GatewayError {
        switch self {
        case .refused(let details):
            let error = details.error ?? ""
            let description = details.errorDescription ?? ""
            if ["invalid_client_id", "invalid_client", "unsupported_grant_type"].contains(error)
                || description.contains("not supported on this domain")
            {
                return GatewayError(
                    .clientRejected,
                    message:
                        "Salesforce refused the client itself (\(error)): fix its client_id, secret, login_url or connected app.",
                    upstream: details)
            }
            if case .authorizationCode = grant {
                return GatewayError(
                    .invalidGrant,
                    message:
                        "Salesforce refused the authorization code (expired, already used, or another redirect_uri): authorize again and send the new code.",
                    upstream: details)
            }
            if error == "invalid_grant" {
                return GatewayError.reauthorization(
                    "Salesforce no longer accepts this connection's grant (\(description.isEmpty ? error : description)): a person must act (authorize again, or pre-approve the user).",
                    upstream: details)
            }
            return GatewayError(
                .upstreamError,
                message: "Salesforce refused the token request (\(error)).", upstream: details)
        case .throttled(let retryAfter, let details):
            return GatewayError(
                .upstreamRateLimited,
                message: "Salesforce is throttling token requests; retry after \(retryAfter) s.",
                upstream: details, retryAfterSeconds: retryAfter)
        case .serverError(let status):
            return GatewayError(
                .upstreamError, message: "Salesforce answered HTTP \(status); retry later.",
                upstream: UpstreamDetails(status: status))
        case .unreadable(let status):
            return GatewayError(
                .upstreamError,
                message: "Salesforce's answer was not a token response (HTTP \(status)).")
        case .badSignature:
            return GatewayError(
                .upstreamError,
                message: "Salesforce's token response failed signature verification; nothing was stored.")
        case .timeout:
            return GatewayError(.upstreamTimeout, message: "Salesforce did not answer in time; retry later.")
        case .unreachable, .transport:
            return GatewayError(.upstreamError, message: "Salesforce could not be reached; retry later.")
        }
    }
}
