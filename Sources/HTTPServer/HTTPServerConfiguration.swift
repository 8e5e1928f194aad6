#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Settings of an `HTTPServer`, with production defaults.
public struct HTTPServerConfiguration: Sendable {
    /// The address to listen on (IPv4 or IPv6 literal).
    public var host: String = "0.0.0.0"
    /// The TCP port; 0 picks any free port (read the bound one from `HTTPServer.port`).
    public var port: Int = 8080
    /// Worker threads of libmicrohttpd's pool; defaults to the number of online cores.
    public var threads: Int = HTTPServerConfiguration.onlineCores
    /// Most connections kept open at once. At the limit a new client is still let in: the connections that have
    /// waited longest for a request are closed instead (busy ones never are). Lowered at start, with a warning,
    /// when the process's open-file limit (raised to its hard limit if need be) cannot hold that many.
    public var maxConnections: Int = 10_000
    /// Seconds an idle (keep-alive) connection stays open after an answer, however it dribbles bytes.
    public var connectionTimeoutSeconds: Int = 60
    /// Largest body read into memory; past it `HTTPRequest.bodyTooLarge` is set and the rest discarded.
    public var maxBodyBytes: Int = 65536
    /// Seconds a request has for its request line and headers (from the connection's start, or on a kept-alive
    /// connection from its request line); past them the connection is closed.
    public var headerTimeoutSeconds: Int = 10
    /// The bodies of the answers the server gives on its own (503 at shutdown, 400/501 for ambiguous framing, 500
    /// when an answer cannot be queued); the server sets their status, `Allow` and `Connection: close` itself.
    /// The default is plain text; an application passes its own error format (and the same to `Router(refusals:)`).
    public var refusalResponse: @Sendable (HTTPRefusal) -> HTTPResponse = HTTPRefusal.plainText

    /// Creates a configuration; every argument has the default documented on its property.
    public init(
        host: String = "0.0.0.0", port: Int = 8080, threads: Int = HTTPServerConfiguration.onlineCores,
        maxConnections: Int = 10_000, connectionTimeoutSeconds: Int = 60, maxBodyBytes: Int = 65536,
        headerTimeoutSeconds: Int = 10,
        refusalResponse: @escaping @Sendable (HTTPRefusal) -> HTTPResponse = HTTPRefusal.plainText
    ) {
        self.refusalResponse = refusalResponse
        self.host = host
        self.port = port
        self.threads = threads
        self.maxConnections = maxConnections
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.maxBodyBytes = maxBodyBytes
        self.headerTimeoutSeconds = headerTimeoutSeconds
    }

    /// The number of online CPU cores (at least 1).
    public static var onlineCores: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}

/// Why the server could not start (or was misused).
public struct HTTPServerError: Error, CustomStringConvertible {
    /// The operation that failed, e.g. "start" or "queue response".
    public let operation: String
    /// What went wrong, for people.
    public let reason: String

    /// Creates an error for `operation`.
    public init(_ operation: String, _ reason: String) {
        self.operation = operation
        self.reason = reason
    }

    /// "operation: reason".
    public var description: String { "\(operation): \(reason)" }
}
