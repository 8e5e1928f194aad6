/// What a handler returns: an answer now, or work that needs I/O.
public enum HTTPHandlerResult: Sendable {
    /// Answered at once, on the libmicrohttpd worker thread (the fast path).
    case response(HTTPResponse)
    /// Work that waits on I/O: the server suspends the connection, runs this in a `Task`, and resumes the
    /// connection with its answer. No worker thread waits meanwhile.
    case deferred(@Sendable () async -> HTTPResponse)
}

/// Answers requests. `handle` runs on a libmicrohttpd worker thread: it must not block; return `.deferred`
/// for anything that waits.
public protocol HTTPHandler: Sendable {
    /// Answers one request.
    func handle(_ request: HTTPRequest) -> HTTPHandlerResult
}
