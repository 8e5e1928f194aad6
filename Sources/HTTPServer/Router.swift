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
/// A path that is exactly a literal pattern with a route for the method is found by table, without splitting.
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
    /// Patterns without parameters, by method and then the exact path; the first route added for a pair wins,
    /// as in the scan (a fully literal pattern is more specific than any with a parameter).
    private var literals: [String: [String: Entry]] = [:]
    private let refusals: @Sendable (HTTPRefusal) -> HTTPResponse

    /// Creates an empty router; `refusals` gives the bodies of its 404 and 405 answers (plain text by default).
    public init(refusals: @escaping @Sendable (HTTPRefusal) -> HTTPResponse = HTTPRefusal.plainText) {
        self.refusals = refusals
    }

    /// Adds a route for `method` (e.g. "GET") and `pattern` (e.g. "/tenants/{tenant}").
    public mutating func add(_ method: String, _ pattern: String, _ route: @escaping Route) {
        let entry = Entry(method: method, pattern: pattern, segments: Self.parse(pattern), route: route)
        entries.append(entry)
        let isLiteral = entry.segments.allSatisfy { if case .literal = $0 { true } else { false } }
        if isLiteral && !pattern.utf8.contains(UInt8(ascii: "%")) && literals[method]?[pattern] == nil {
            literals[method, default: [:]][pattern] = entry
        }
    }

    /// The routes in insertion order.
    public var routes: [(method: String, pattern: String)] {
        entries.map { (method: $0.method, pattern: $0.pattern) }
    }

    /// Looks up the route for `method` and the raw (still encoded) `path`.
    public func match(method: String, path: String) -> RouteMatch {
        if let entry = literals[method]?[path] {
            return .found(pattern: entry.pattern, parameters: PathParameters(), route: entry.route)
        }
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

    /// Routes the request: the route's result, else 404 or 405 with `Allow`, bodies from `refusals`.
    public func handle(_ request: HTTPRequest) -> HTTPHandlerResult {
        switch match(method: request.method, path: request.path) {
        case .found(_, let parameters, let route):
            return route(request, parameters)
        case .methodNotAllowed(let allow):
            let refusal = HTTPRefusal.methodNotAllowed(method: request.method, allow: allow)
            return .response(refusal.completing(refusals(refusal)))
        case .notFound:
            return .response(HTTPRefusal.notFound.completing(refusals(.notFound)))
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
