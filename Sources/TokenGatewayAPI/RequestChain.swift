import HTTPServer
import Logging
import TokenGatewayService

extension Logger {
    /// This logger with the request id in its metadata, as every line about one request carries it.
    func forRequest(_ requestID: String) -> Logger {
        var logger = self
        logger[metadataKey: "request_id"] = "\(requestID)"
        return logger
    }
}

/// What the request pipeline knows of a route, worked out once when the router is built.
struct ServedRoute: Sendable {
    /// The route pattern (the metrics and log label).
    var pattern: String
    /// The credential the route takes.
    var access: Access
    /// Its answers carry `Cache-Control: no-store` (`RequestChain.noStorePOSTRoutes`).
    var noStore: Bool
    /// Its request counters.
    var metrics: Metrics.Route
}

/// What the steps after a route's handler know of the request they finish.
struct RequestTrace: Sendable {
    /// The request as the server read it.
    var request: HTTPRequest
    /// The route that matched.
    var route: ServedRoute
    /// The route pattern that matched (the metrics label).
    var pattern: String { route.pattern }
    /// When the gateway started serving it.
    var started: ContinuousClock.Instant
    /// Why the request was refused before any handler ran (the name of its sampled log line), if it was.
    var refusal: String?
}

/// The chain every answer passes on its way out, one small step per concern, in order: `Cache-Control` for
/// answers that hold secrets, the request metrics, the request's log line. Credentials are checked on the way in
/// (`GatewayAPI.admission`), and errors become answers in `ErrorResponses.swift`.
enum RequestChain {
    /// Runs every step on `response`, in order (called directly: no list of closures on the hot path). Each step
    /// may change the answer (a header) or only observe it.
    static func finish(_ api: GatewayAPI, _ trace: RequestTrace, _ response: HTTPResponse) -> HTTPResponse {
        var response = response
        noStore(api, trace, &response)
        measure(api, trace, &response)
        log(api, trace, &response)
        return response
    }

    /// `POST` routes whose answers (errors too) carry `Cache-Control: no-store`: they hold tokens, keys or
    /// single-use links.
    static let noStorePOSTRoutes: Set<String> = [
        "/token", "/exchange", "/tenants/{tenant}/keys", "/tenants/{tenant}/clients/{client}/authorize",
    ]

    static func noStore(_ api: GatewayAPI, _ trace: RequestTrace, _ response: inout HTTPResponse) {
        if trace.route.noStore {
            response.headers.replaceOrAdd("Cache-Control", "no-store")
        }
    }

    static func measure(_ api: GatewayAPI, _ trace: RequestTrace, _ response: inout HTTPResponse) {
        api.metrics.request(trace.route.metrics, status: response.status, duration: ContinuousClock.now - trace.started)
    }

    /// One line per request: `debug` for successes, `info` for 4xx, `error` for 5xx. Refusals of unauthenticated
    /// callers are sampled (one line a second per reason) so they cannot flood the log.
    static func log(_ api: GatewayAPI, _ trace: RequestTrace, _ response: inout HTTPResponse) {
        let status = response.status
        let level: Logger.Level = status >= 500 ? .error : status >= 400 ? .info : .debug
        var suppressed: Int?
        if let refusal = trace.refusal {
            guard let count = api.authentication.sampleLog(refusal) else { return }
            suppressed = count
        }
        guard api.logger.logLevel <= level else { return }
        let logger = api.logger.forRequest(trace.request.requestID)
        let elapsed = ContinuousClock.now - trace.started
        var metadata: Logger.Metadata = [
            "method": "\(trace.request.method)", "route": "\(trace.pattern)", "status": "\(status)",
            "duration_ms": "\(Double(Int(elapsed.seconds * 100_000)) / 100)",
        ]
        if let refusal = trace.refusal, let suppressed {
            metadata["refusal"] = "\(refusal)"
            metadata["peer"] = "\(trace.request.remoteAddress)"
            metadata["suppressed"] = "\(suppressed)"
        }
        logger.log(level: level, "request", metadata: metadata)
    }
}
