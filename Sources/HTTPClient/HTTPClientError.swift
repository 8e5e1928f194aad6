internal import CLibCurl

/// Why an outbound call failed without a response. Its text never holds the request body or query string.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    /// The class of failure callers act on.
    public enum Kind: Sendable {
        /// The whole call took longer than its total timeout.
        case timeout
        /// The connection could not be established in time; the request was not sent.
        case connectTimeout
        /// The connection was refused, or the host name did not resolve; the request was not sent.
        case couldNotConnect
        /// The TLS handshake failed (e.g. an untrusted certificate); the request was not sent.
        case tls
        /// The response body exceeded `HTTPClientConfiguration.maxResponseBytes`.
        case responseTooLarge
        /// The URL is malformed or uses a scheme other than http and https.
        case invalidURL
        /// The client was shut down before the call completed.
        case shutDown
        /// Any other failure (connection reset, malformed response, invalid header, ...).
        case other
    }

    /// The class of failure.
    public var kind: Kind
    /// The `CURLcode` (0 when the failure did not come from curl).
    public var code: Int
    /// curl's error text; never the request body or query.
    public var message: String
    /// False when the request surely was not sent (connect failures, DNS, invalid URL, TLS handshake): only those
    /// calls are safe to retry whatever the method.
    public var mayHaveReachedServer: Bool

    /// Creates an error.
    public init(kind: Kind, code: Int, message: String, mayHaveReachedServer: Bool) {
        self.kind = kind
        self.code = code
        self.message = message
        self.mayHaveReachedServer = mayHaveReachedServer
    }

    /// A one-line summary for logs.
    public var description: String {
        "HTTPClientError(\(kind), code \(code), mayHaveReachedServer \(mayHaveReachedServer)): \(message)"
    }

    static func shutDown(mayHaveReachedServer: Bool) -> HTTPClientError {
        HTTPClientError(
            kind: .shutDown, code: 0, message: "the HTTP client was shut down",
            mayHaveReachedServer: mayHaveReachedServer)
    }

    /// A failure found before anything went to curl's transfer machinery (validation, allocation, thread start).
    static func notSent(_ kind: Kind, _ message: String) -> HTTPClientError {
        HTTPClientError(kind: kind, code: 0, message: message, mayHaveReachedServer: false)
    }
}

/// Where a curl return code came from, which decides whether the request may have been sent.
struct CurlCallSite {
    /// True once the handle was handed to the multi handle, so the request may be on the wire.
    var transferStarted: Bool
    /// True when a TCP connection to the server existed (fresh or reused) or request bytes were written.
    var connected: Bool
    /// True when a callback refused response bytes past the size limit.
    var responseTooLarge: Bool
    /// curl's error buffer for the handle, if any.
    var errorBuffer: String
    /// Strings that must never show up in a message (query string, body).
    var secrets: [String]

    static let setup = CurlCallSite(
        transferStarted: false, connected: false, responseTooLarge: false, errorBuffer: "", secrets: [])
}

/// The one place where a `CURLcode` becomes an `HTTPClientError`.
func check(_ code: CURLcode, _ site: CurlCallSite = .setup) throws(HTTPClientError) {
    guard code != CURLE_OK else { return }
    let kind: HTTPClientError.Kind
    switch code {
    case CURLE_OPERATION_TIMEDOUT:
        kind = site.connected ? .timeout : .connectTimeout
    case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
        kind = .couldNotConnect
    case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
        CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
        CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
        CURLE_SSL_ENGINE_INITFAILED:
        kind = .tls
    case CURLE_FILESIZE_EXCEEDED:
        kind = .responseTooLarge
    case CURLE_WRITE_ERROR where site.responseTooLarge:
        kind = .responseTooLarge
    case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
        kind = .invalidURL
    default:
        kind = .other
    }
    let mayHaveReachedServer: Bool
    switch kind {
    case .couldNotConnect, .connectTimeout, .invalidURL, .tls:
        // These fail before the first request byte is written (TLS: during the handshake).
        mayHaveReachedServer = false
    default:
        mayHaveReachedServer = site.transferStarted && site.connected
    }
    var message = site.errorBuffer.isEmpty ? String(cString: curl_easy_strerror(code)) : site.errorBuffer
    for secret in site.secrets where secret.count >= 3 {
        message = message.replacingAll(secret, with: "<redacted>")
    }
    throw HTTPClientError(
        kind: kind, code: Int(code.rawValue), message: message, mayHaveReachedServer: mayHaveReachedServer)
}

/// The one place where a `CURLMcode` (multi handle) becomes an `HTTPClientError`.
func check(_ code: CURLMcode) throws(HTTPClientError) {
    guard code != CURLM_OK else { return }
    throw HTTPClientError(
        kind: .other, code: Int(code.rawValue), message: String(cString: curl_multi_strerror(code)),
        mayHaveReachedServer: false)
}

extension String {
    /// Replaces every occurrence of `target` (without Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
