import Codecs
import Synchronization
import TokenGatewayDomain
import TokenGatewayStore

/// The gateway's Prometheus metrics (`GET /metrics`). Cheap to update from any thread: one lock, no allocation on
/// the common paths beyond dictionary updates.
public final class Metrics: Sendable {
    struct RouteStatus: Hashable {
        var route: String
        var status: Int
    }

    struct Histogram {
        static let bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
        var buckets = [Int](repeating: 0, count: bounds.count)
        var count = 0
        var sum = 0.0

        mutating func observe(_ seconds: Double) {
            count += 1
            sum += seconds
            if let index = Self.bounds.firstIndex(where: { seconds <= $0 }) { buckets[index] += 1 }
        }
    }

    /// A route's request counters, reached without hashing its pattern: `route(_:)` hands one out per route when
    /// the router is built.
    public struct Route: Sendable {
        let index: Int
    }

    struct State {
        var requests: [RouteStatus: Int] = [:]
        /// The patterns of `route(_:)`, by index, and their counts by status (a few statuses each: a short scan).
        var routes: [String] = []
        var routeCounts: [[(status: Int, count: Int)]] = []
        var requestDuration = Histogram()
        var cacheHits = 0
        var cacheMisses = 0
        var upstream: [String: Int] = [:]  // "grant\u{0}outcome"
        var upstreamDuration = Histogram()
        var refreshFailures = 0
        var introspections: [IntrospectionOutcome: Int] = [:]
        var background: [String: Int] = [:]  // "reason\u{0}outcome"
        var webhookDeliveries: [String: Int] = [:]
    }

    /// The outcomes of webhook delivery attempts, listed from the start so that rates work before the first.
    public static let webhookOutcomes = ["delivered", "failed", "gave_up"]

    private let state = Mutex(State())
    /// Reads the current count of connections needing reauthorization (from the database) and of pool use.
    private let gauges: Mutex<[String: @Sendable () -> Double]> = Mutex([:])

    /// Metrics with every counter at zero and no gauges.
    public init() {}

    /// Counts one answered request of `route` with its status, and observes its duration.
    public func request(route: String, status: Int, duration: Duration) {
        let seconds = duration.seconds
        state.withLock {
            $0.requests[RouteStatus(route: route, status: status), default: 0] += 1
            $0.requestDuration.observe(seconds)
        }
    }

    /// The counters of requests to `route` (a pattern), the same ones `request(route:status:duration:)` counts.
    public func route(_ route: String) -> Route {
        state.withLock {
            if let index = $0.routes.firstIndex(of: route) { return Route(index: index) }
            $0.routes.append(route)
            $0.routeCounts.append([])
            return Route(index: $0.routes.count - 1)
        }
    }

    /// Counts one answered request of `route` with its status, and observes its duration.
    public func request(_ route: Route, status: Int, duration: Duration) {
        let seconds = duration.seconds
        state.withLock {
            if let at = $0.routeCounts[route.index].firstIndex(where: { $0.status == status }) {
                $0.routeCounts[route.index][at].count += 1
            } else {
                $0.routeCounts[route.index].append((status, 1))
            }
            $0.requestDuration.observe(seconds)
        }
    }

    /// Counts a token request answered from memory.
    public func cacheHit() { state.withLock { $0.cacheHits += 1 } }
    /// Counts a token request the cache could not answer.
    public func cacheMiss() { state.withLock { $0.cacheMisses += 1 } }
    /// Counts a failed token fetch.
    public func refreshFailure() { state.withLock { $0.refreshFailures += 1 } }

    /// Counts one Salesforce token call by grant and outcome, and observes its duration.
    public func upstreamCall(grant: String, outcome: String, duration: Duration) {
        let seconds = duration.seconds
        state.withLock {
            $0.upstream["\(grant)\u{0}\(outcome)", default: 0] += 1
            $0.upstreamDuration.observe(seconds)
        }
    }

    /// Counts one introspection call by its outcome.
    public func introspection(outcome: IntrospectionOutcome) {
        state.withLock { $0.introspections[outcome, default: 0] += 1 }
    }

    /// Introspection calls counted with this outcome so far.
    public func introspections(outcome: IntrospectionOutcome) -> Int {
        state.withLock { $0.introspections[outcome] ?? 0 }
    }

    /// Counts one background refresh by reason (`ahead`, `keepalive`) and outcome.
    public func backgroundRefresh(reason: String, outcome: String) {
        state.withLock { $0.background["\(reason)\u{0}\(outcome)", default: 0] += 1 }
    }

    /// Background refreshes counted so far with this reason and outcome.
    public func backgroundRefreshes(reason: String, outcome: String) -> Int {
        state.withLock { $0.background["\(reason)\u{0}\(outcome)"] ?? 0 }
    }

    /// Counts one webhook delivery attempt: `delivered` (2xx), `failed` (retried later) or `gave_up`.
    public func webhookDelivery(outcome: String) {
        state.withLock { $0.webhookDeliveries[outcome, default: 0] += 1 }
    }

    /// Webhook delivery attempts counted so far with this outcome.
    public func webhookDeliveries(outcome: String) -> Int {
        state.withLock { $0.webhookDeliveries[outcome] ?? 0 }
    }

    /// Registers a gauge read at scrape time.
    public func gauge(_ name: String, _ read: @escaping @Sendable () -> Double) {
        gauges.withLock { $0[name] = read }
    }

    /// Token requests answered from memory so far.
    public var cacheHits: Int { state.withLock { $0.cacheHits } }
    /// Token requests the cache could not answer so far.
    public var cacheMisses: Int { state.withLock { $0.cacheMisses } }

    /// The Prometheus text exposition.
    public func render() -> String {
        var snapshot = state.withLock { $0 }
        for (index, route) in snapshot.routes.enumerated() {
            for (status, count) in snapshot.routeCounts[index] {
                snapshot.requests[RouteStatus(route: route, status: status), default: 0] += count
            }
        }
        var out = ""
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
            var cumulative = 0
            for (index, bound) in Histogram.bounds.enumerated() {
                cumulative += h.buckets[index]
                out += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
            }
            out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n\(name)_sum \(h.sum)\n\(name)_count \(h.count)\n"
        }
        func labeled(_ name: String, _ help: String, _ labels: (String, String), _ counts: [String: Int]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
                let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false)
                out += "\(name){\(labels.0)=\"\(parts[0])\",\(labels.1)=\"\(parts[1])\"} \(count)\n"
            }
        }
        labeled(
            "token_gateway_requests_total", "HTTP requests by route and status.", ("route", "status"),
            Dictionary(
                uniqueKeysWithValues: snapshot.requests.map { ("\($0.key.route)\u{0}\($0.key.status)", $0.value) }))
        histogram("token_gateway_request_duration_seconds", "HTTP request duration.", snapshot.requestDuration)
        out += "# HELP token_gateway_cache_hits_total Token requests answered from memory.\n"
        out += "# TYPE token_gateway_cache_hits_total counter\ntoken_gateway_cache_hits_total \(snapshot.cacheHits)\n"
        out += "# HELP token_gateway_cache_misses_total Token requests that needed the database or Salesforce.\n"
        out +=
            "# TYPE token_gateway_cache_misses_total counter\ntoken_gateway_cache_misses_total \(snapshot.cacheMisses)\n"
        labeled(
            "token_gateway_upstream_requests_total", "Salesforce token calls by grant and outcome.",
            ("grant", "outcome"),
            snapshot.upstream)
        histogram(
            "token_gateway_upstream_duration_seconds", "Salesforce token call duration.", snapshot.upstreamDuration)
        out += "# HELP token_gateway_refresh_failures_total Token fetches that failed.\n"
        out +=
            "# TYPE token_gateway_refresh_failures_total counter\ntoken_gateway_refresh_failures_total \(snapshot.refreshFailures)\n"
        out += "# HELP token_gateway_introspections_total Salesforce introspections of new access tokens by outcome.\n"
        out += "# TYPE token_gateway_introspections_total counter\n"
        // Every outcome is listed from the start, so that rates work before the first of each.
        for outcome in IntrospectionOutcome.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
            let count = snapshot.introspections[outcome] ?? 0
            out += "token_gateway_introspections_total{outcome=\"\(outcome.rawValue)\"} \(count)\n"
        }
        labeled(
            "token_gateway_background_refreshes_total",
            "Background refreshes by reason (ahead, keepalive) and outcome (renewed, stored, failed).",
            ("reason", "outcome"), snapshot.background)
        out += "# HELP token_gateway_webhook_deliveries_total Webhook delivery attempts by outcome.\n"
        out += "# TYPE token_gateway_webhook_deliveries_total counter\n"
        for outcome in Self.webhookOutcomes {
            let count = snapshot.webhookDeliveries[outcome] ?? 0
            out += "token_gateway_webhook_deliveries_total{outcome=\"\(outcome)\"} \(count)\n"
        }
        for (name, read) in gauges.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            out += "# TYPE \(name) gauge\n\(name) \(read())\n"
        }
        return out
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
