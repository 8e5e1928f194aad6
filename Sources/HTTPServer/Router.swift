internal import Codecs

/// Values of the `{name}` segments of a matched route pattern, percent-decoded.
public struct PathParameters: Sendable {
    private var values: [(String, String)]

    /// Creates parameters from `(name, value)` pairs, for tests.
    public init(_ values: [(String, String)] = []) {
        self.values = values
    }

    /// The decoded value of parameter `name`, nil when the pattern has no such parameter.
    public subscript(name: String) -> String? {
        values.first { $0.0 == name }?.1
    }
}

/// The outcome of looking a method and path up in a `Router`.
public enum RouteMatch: Sendable {
    /// A route serves this method and path.
    case found(pattern: String, parameters: PathParameters, route: Router.Route)
    /// Routes serve this path, but not with this method; `allow` lists the methods that would be served.
    case methodNotAllowed(allow: [String])
    /// No route serves this path.
    case notFound
}

/// Method and path routing with parameters, e.g. `/tenants/{tenant}/clients/{client}`.
///
/// Paths are split on "/" before decoding, so an encoded slash (`%2F`) stays inside one parameter.
/// Where several patterns match, the one with a literal segment earliest wins over a parameter
/// (`/tenants/search` before `/tenants/{tenant}`). A `HEAD` request falls back to the `GET` route.
public struct Router: HTTPHandler {
    /// A route's code: gets the request and its path parameters.
    public typealias Route = @Sendable (HTTPRequest, PathParameters) -> HTTPHandlerResult

    private enum Segment: Sendable {
        case literal(String)
        case parameter(String)
    }

    private struct Entry: Sendable {
        let method: String
        let pattern: String
        let segments: [Segment]
        let route: Route
    }

    private var entries: [Entry] = []

    /// Creates an empty router.
    public init() {}

    /// Adds a route for `method` (e.g. "GET") and `pattern` (e.g. "/tenants/{tenant}").
    public mutating func add(_ method: String, _ pattern: String, _ route: @escaping Route) {
        entries.append(Entry(method: method, pattern: pattern, segments: Self.parse(pattern), route: route))
    }

    /// The routes in insertion order.
    public var routes: [(method: String, pattern: String)] {
        entries.map { (method: $0.method, pattern: $0.pattern) }
    }

    /// Looks up the route for `method` and the raw (still encoded) `path`.
    public func match(method: String, path: String) -> RouteMatch {
        let pieces = Self.split(path)
        var best: (entry: Entry, parameters: [(String, String)])?
        var getFallback: (entry: Entry, parameters: [(String, String)])?
        var allow: [String] = []
        for entry in entries {
            guard let parameters = Self.bind(entry.segments, to: pieces) else { continue }
            if entry.method == method {
                if best == nil || Self.isMoreSpecific(entry, than: best!.entry) { best = (entry, parameters) }
            } else if method == "HEAD" && entry.method == "GET" {
                if getFallback == nil || Self.isMoreSpecific(entry, than: getFallback!.entry) {
                    getFallback = (entry, parameters)
                }
            }
            if !allow.contains(entry.method) { allow.append(entry.method) }
        }
        if let found = best ?? getFallback {
            return .found(
                pattern: found.entry.pattern, parameters: PathParameters(found.parameters), route: found.entry.route)
        }
        return allow.isEmpty ? .notFound : .methodNotAllowed(allow: allow)
    }

    /// Routes the request: the route's result, else `404 not_found` or `405 method_not_allowed` with `Allow`.
    public func handle(_ request: HTTPRequest) -> HTTPHandlerResult {
        switch match(method: request.method, path: request.path) {
        case .found(_, let parameters, let route):
            return route(request, parameters)
        case .methodNotAllowed(let allow):
            return .response(
                .error(
                    status: 405, code: "method_not_allowed",
                    message: "\(request.method) is not allowed here; use \(allow.joined(separator: " or ")).",
                    headers: HTTPHeaders([("Allow", allow.joined(separator: ", "))])))
        case .notFound:
            return .response(
                .error(status: 404, code: "not_found", message: "No resource at this path."))
        }
    }

    private static func parse(_ pattern: String) -> [Segment] {
        split(pattern).map { piece in
            if piece.hasPrefix("{") && piece.hasSuffix("}") && piece.count >= 2 {
                return .parameter(String(piece.dropFirst().dropLast()))
            }
            return .literal(String(piece))
        }
    }

    /// "/a/b" -> ["a", "b"]; "/" -> []; "/a/" -> ["a", ""] (a trailing slash is a distinct, empty segment).
    private static func split(_ path: String) -> [Substring] {
        var trimmed = Substring(path)
        if trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        if trimmed.isEmpty { return [] }
        return trimmed.split(separator: "/", omittingEmptySubsequences: false)
    }

    private static func bind(_ segments: [Segment], to pieces: [Substring]) -> [(String, String)]? {
        guard segments.count == pieces.count else { return nil }
        var parameters: [(String, String)] = []
        for (segment, piece) in zip(segments, pieces) {
            switch segment {
            case .literal(let text):
                guard piece == text || Percent.decode(piece) == text else { return nil }
            case .parameter(let name):
                guard !piece.isEmpty else { return nil }
                parameters.append((name, Percent.decode(piece)))
            }
        }
        return parameters
    }

    private static func isMoreSpecific(_ a: Entry, than b: Entry) -> Bool {
        for (x, y) in zip(a.segments, b.segments) {
            switch (x, y) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            default: continue
            }
        }
        return false
    }
}
