internal import CLibCurl
internal import Codecs

/// One request on its own curl easy handle, from setup to the resumed continuation.
///
/// `@unchecked Sendable`: the calling task configures it and sets `continuation`, then hands it to the poller
/// through the poller's lock; from then on only the poller thread touches its mutable state (curl calls the
/// callbacks on that thread, inside `curl_multi_perform`). `id` is immutable and read from anywhere.
final class CurlTransfer: @unchecked Sendable {
    let id: UInt64
    /// The easy handle (`CURL*`), owned by this object: freed by `close()` on the poller thread once removed from
    /// the multi handle, or in `deinit` if it never got there. Invalid after `close()`.
    let easy: UnsafeMutableRawPointer
    private var closed = false
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// Buffer curl writes its error text into (CURLOPT_ERRORBUFFER), CURL_ERROR_SIZE bytes.
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let maxResponseBytes: Int
    /// Kept (copy-on-write, no copy made) to redact from error messages; decoded only when a call fails.
    private let requestBody: [UInt8]
    private let query: String
    private let userInfo: String
    /// Method and URL without user info, query or fragment, for logs.
    let logTarget: String
    let started: ContinuousClock.Instant

    private(set) var body: [UInt8] = []
    private(set) var headers: [(String, String)] = []
    private(set) var responseTooLarge = false
    private var headerBytes = 0
    /// Set before the hand-off; resumed exactly once through `finish(_:)`.
    var continuation: CheckedContinuation<HTTPClientResponse, any Error>?

    init(request: HTTPClientRequest, configuration: HTTPClientConfiguration, id: UInt64) throws(HTTPClientError) {
        try Self.validate(request)
        guard let easy = curl_easy_init() else {
            throw .notSent(.other, "curl_easy_init failed")
        }
        self.id = id
        self.easy = easy
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        self.maxResponseBytes = configuration.maxResponseBytes
        let (withoutQuery, query, userInfo) = Self.split(request.url)
        self.query = query
        self.userInfo = userInfo
        self.requestBody = request.body
        self.logTarget = "\(request.method) \(withoutQuery)"
        self.started = .now
        try configure(request, configuration)
    }

    deinit {
        close()
        errorBuffer.deallocate()
    }

    /// Frees the easy handle and header list; the poller calls it right after `curl_multi_remove_handle`, so every
    /// curl call on a handle that was in the multi handle happens on the poller thread. Idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        headerList = nil
    }

    private func configure(_ request: HTTPClientRequest, _ configuration: HTTPClientConfiguration)
        throws(HTTPClientError)
    {
        try check(tgw_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer))
        try check(tgw_curl_easy_setopt_string(easy, CURLOPT_URL, request.url))
        // Only http and https, also for redirects (which are not followed anyway).
        try check(tgw_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        try check(tgw_curl_easy_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
        try check(tgw_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0))
        // TLS verification is always on; no setting turns it off.
        try check(tgw_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1))
        try check(tgw_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2))
        // No SIGALRM for DNS timeouts: signals and a multi-threaded process do not mix.
        try check(tgw_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        try check(tgw_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1))
        try check(
            tgw_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeout.curlMilliseconds))
        try check(
            tgw_curl_easy_setopt_long(
                easy, CURLOPT_TIMEOUT_MS, (request.timeout ?? configuration.totalTimeout).curlMilliseconds))
        try check(tgw_curl_easy_setopt_string(easy, CURLOPT_USERAGENT, configuration.userAgent))
        // A Content-Length past the limit fails at once; bodies without one are cut off by the write callback.
        try check(
            tgw_curl_easy_setopt_off_t(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(configuration.maxResponseBytes)))

        // Unmanaged, unretained: the poller keeps this transfer alive while curl may call back (it sits in the
        // poller's table of active transfers until curl_multi_remove_handle), so the sink outlives every callback.
        let sink = Unmanaged.passUnretained(self).toOpaque()
        try check(tgw_curl_easy_setopt_write_callback(easy, CURLOPT_WRITEFUNCTION, Self.writeCallback))
        try check(tgw_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, sink))
        try check(tgw_curl_easy_setopt_write_callback(easy, CURLOPT_HEADERFUNCTION, Self.headerCallback))
        try check(tgw_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, sink))

        try configureMethodAndBody(request)

        var lines = request.headers.map { "\($0.0): \($0.1)" }
        // An empty Expect: stops curl from waiting for "100 Continue" before sending larger bodies.
        lines.append("Expect:")
        for line in lines {
            guard let appended = curl_slist_append(headerList, line) else {
                throw .notSent(.other, "curl_slist_append failed")
            }
            headerList = appended
        }
        try check(tgw_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList))
    }

    private func configureMethodAndBody(_ request: HTTPClientRequest) throws(HTTPClientError) {
        let method = request.method
        if method == "GET" && request.body.isEmpty {
            try check(tgw_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1))
        } else if method == "HEAD" && request.body.isEmpty {
            try check(tgw_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
        } else if method == "POST" || !request.body.isEmpty {
            // POSTFIELDSIZE first, so COPYPOSTFIELDS copies exactly that many bytes (the body may hold NULs).
            try check(tgw_curl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)))
            // Never a NULL pointer here: curl would then read the body from stdin.
            let code =
                request.body.isEmpty
                ? tgw_curl_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, "")
                : request.body.withUnsafeBytes { bytes in
                    // COPYPOSTFIELDS copies the bytes before returning, so the borrowed pointer may go away.
                    tgw_curl_easy_setopt_pointer(
                        easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
                }
            try check(code)
            if method != "POST" {
                try check(tgw_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method))
            }
        } else {
            try check(tgw_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method))
        }
    }

    /// Refuses what curl would send verbatim or guess: header injection, odd methods, scheme-less URLs.
    private static func validate(_ request: HTTPClientRequest) throws(HTTPClientError) {
        let lowered = request.url.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else {
            throw .notSent(.invalidURL, "the URL must be absolute with scheme http or https")
        }
        guard !request.url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f }) else {
            throw .notSent(.invalidURL, "the URL contains spaces or control characters")
        }
        let tokenBytes = Set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        guard !request.method.isEmpty, request.method.utf8.allSatisfy({ tokenBytes.contains($0) }) else {
            throw .notSent(.other, "the method is not an HTTP token")
        }
        for (name, value) in request.headers {
            guard !name.isEmpty, name.utf8.allSatisfy({ tokenBytes.contains($0) }) else {
                throw .notSent(.other, "a header name is not an HTTP token")
            }
            guard !value.utf8.contains(where: { $0 == 0x0d || $0 == 0x0a || $0 == 0 }) else {
                throw .notSent(.other, "the value of header \(name) contains CR, LF or NUL")
            }
        }
    }

    /// Splits a validated http(s) URL into what may be logged (no user info, query or fragment) and the secrets.
    static func split(_ url: String) -> (loggable: String, query: String, userInfo: String) {
        let withoutFragment = url.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let parts = withoutFragment.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var loggable = String(parts[0])
        var userInfo = ""
        if let schemeEnd = loggable.firstRange(of: "://")?.upperBound {
            let authorityEnd = loggable[schemeEnd...].firstIndex(of: "/") ?? loggable.endIndex
            if let at = loggable[schemeEnd..<authorityEnd].lastIndex(of: "@") {
                userInfo = String(loggable[schemeEnd..<at])
                loggable.removeSubrange(schemeEnd...at)
            }
        }
        return (loggable, parts.count > 1 ? String(parts[1]) : "", userInfo)
    }

    // MARK: Callbacks (poller thread, inside curl_multi_perform)

    /// Non-capturing, so it converts to a C function pointer; the transfer comes back through the sink pointer.
    private static let writeCallback: curl_write_callback = { data, size, count, sink in
        guard let sink else { return 0 }
        // Unmanaged: see `configure`, the poller keeps the transfer alive while it is in the multi handle.
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(sink).takeUnretainedValue()
        return transfer.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
    }

    /// Called once per header line (status line and the blank line included), for every response received.
    private static let headerCallback: curl_write_callback = { data, size, count, sink in
        guard let sink else { return 0 }
        // Unmanaged: see `configure`.
        let transfer = Unmanaged<CurlTransfer>.fromOpaque(sink).takeUnretainedValue()
        return transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: data, count: size * count))
    }

    private func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard body.count + bytes.count <= maxResponseBytes else {
            responseTooLarge = true
            return 0  // fewer bytes than given: curl aborts with CURLE_WRITE_ERROR
        }
        body.append(contentsOf: bytes)
        return bytes.count
    }

    private func receiveHeaderLine(_ bytes: UnsafeRawBufferPointer) -> Int {
        // Header bytes count against the same limit as the body (curl 7.88 caps single lines, not their number).
        headerBytes += bytes.count
        guard headerBytes <= maxResponseBytes else {
            responseTooLarge = true
            return 0  // fewer bytes than given: curl aborts with CURLE_WRITE_ERROR
        }
        var line = bytes[...]
        while let last = line.last, last == 0x0d || last == 0x0a { line = line.dropLast() }
        if line.starts(with: Array("HTTP/".utf8)) {
            // A new response starts (after a 1xx, or a proxy's CONNECT answer): keep only the final one's fields.
            headers.removeAll()
        } else if let first = line.first, first == 0x20 || first == 0x09, !headers.isEmpty {
            // Obsolete line folding: the line continues the previous field's value.
            headers[headers.count - 1].1 += " " + Self.trimmed(line)
        } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            let name = String(decoding: line[..<colon], as: UTF8.self)
            headers.append((name, Self.trimmed(line[(colon + 1)...])))
        }
        return bytes.count
    }

    private static func trimmed(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
        var slice = bytes
        while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
        while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
        return String(decoding: slice, as: UTF8.self)
    }

    // MARK: Completion (poller thread)

    /// Strings an error message must not show: the query and the body, whole and as form values.
    func secrets() -> [String] {
        var secrets = [query, userInfo]
        secrets += userInfo.split(separator: ":").map(String.init)
        secrets += query.split(separator: "&").map { String($0.split(separator: "=", maxSplits: 1).last ?? "") }
        if requestBody.count <= 65536 {
            let body = String(decoding: requestBody, as: UTF8.self)
            secrets.append(body)
            for pair in body.split(separator: "&") {
                let value = pair.split(separator: "=", maxSplits: 1).last ?? ""
                secrets.append(String(value))
                secrets.append(Percent.formDecode(value))
            }
        }
        // Longest first, so a value inside a longer secret does not break the longer one's redaction.
        return secrets.filter { $0.count >= 3 }.sorted { $0.count > $1.count }
    }

    /// Facts about the finished handle that decide how an error is classified.
    func callSite(failed: Bool) -> CurlCallSite {
        var connectMicros: curl_off_t = 0
        var requestBytes: Int = 0
        // When curl cannot tell, assume the worst: connected, so the call is not retried as surely unsent.
        let known =
            tgw_curl_easy_getinfo_off_t(easy, CURLINFO_CONNECT_TIME_T, &connectMicros) == CURLE_OK
            && tgw_curl_easy_getinfo_long(easy, CURLINFO_REQUEST_SIZE, &requestBytes) == CURLE_OK
        return CurlCallSite(
            transferStarted: true, connected: !known || connectMicros > 0 || requestBytes > 0,
            responseTooLarge: responseTooLarge,
            errorBuffer: String(cString: errorBuffer), secrets: failed ? secrets() : [])
    }

    /// Builds the outcome of a transfer curl reports as done.
    func outcome(_ code: CURLcode) -> Result<HTTPClientResponse, any Error> {
        do throws(HTTPClientError) {
            try check(code, callSite(failed: code != CURLE_OK))
            var status = 0
            let statusCode = tgw_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            try check(statusCode, callSite(failed: statusCode != CURLE_OK))
            return .success(HTTPClientResponse(status: status, headers: headers, body: body))
        } catch {
            return .failure(error)
        }
    }

    /// The number of new connections this transfer had to open (0 when it reused a cached one).
    func newConnections() -> Int {
        var count = 0
        // Only a statistic: when curl cannot tell, count nothing.
        return tgw_curl_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &count) == CURLE_OK ? count : 0
    }

    /// Resumes the caller; later calls do nothing, so the continuation is resumed exactly once.
    func finish(_ result: Result<HTTPClientResponse, any Error>) {
        guard let continuation else { return }
        self.continuation = nil
        continuation.resume(with: result)
    }
}

extension Duration {
    /// Whole milliseconds for curl, at least 1 (curl reads 0 as "no timeout") and at most a day.
    var curlMilliseconds: Int {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 1 }
        guard seconds < 86_400 else { return 86_400_000 }
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
